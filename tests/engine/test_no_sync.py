"""No host synchronisation per step: a training step never reads a value from the device (issue 16).

On the CPU nothing would wait, so the test makes every read that would wait
on a GPU fail inside a step: ``Tensor.item``, ``tolist``, ``bool``, ``float``,
``int``, ``numpy`` and ``torch.cuda.synchronize``. On CUDA the same can be
confirmed with ``torch.cuda.set_sync_debug_mode("error")`` around the steps.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from divekit.engine.trainer import Trainer
from divekit.runs import resolve_config, train

READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy")


class HostRead(AssertionError):
    pass


@contextlib.contextmanager
def no_host_reads(monkeypatch):
    def refuse(name):
        def read(*args, **kwargs):
            raise HostRead(f"Tensor.{name} in a training step")

        return read

    with monkeypatch.context() as patch:
        for name in READS:
            patch.setattr(torch.Tensor, name, refuse(name))
        patch.setattr(torch.cuda, "synchronize", refuse("synchronize"))
        yield


CASES = {
    "classification": ("mlp", "digits", {}),
    "classification-skipping": ("lenet", "digits", {"train.skip_nonfinite": 3}),
    "language-model": ("gru-lm", "pydoc", {"task.options.max_tokens": 8000, "model.options.num_hiddens": 16}),
    "seq2seq": ("seq2seq", "numbers-fr", {"task.options.num_examples": 256, "task.options.num_test": 16,
                                          "model.options.num_hiddens": 16, "model.options.embed_size": 8}),
    "regression": ("ar-mlp", "sine", {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_training_steps_never_read_the_device(case, monkeypatch):
    model, data, extra = CASES[case]
    real_step = Trainer._step
    steps = []

    def guarded(self, batch):
        with no_host_reads(monkeypatch):
            real_step(self, batch)
        steps.append(1)

    monkeypatch.setattr(Trainer, "_step", guarded)
    overrides = {"train.epochs": 1, "train.progress": False, "data.batch_size": 32, "train.sync_every": 10_000,
                 "train.threads": 1, **extra}  # fmt: skip
    result = train(resolve_config(model, data=data, overrides=overrides), write=False, log=lambda m: None)
    assert len(steps) >= 5 and result.final["train_loss"] > 0


def test_the_guard_catches_a_read(monkeypatch):
    with no_host_reads(monkeypatch), pytest.raises(HostRead):
        bool(torch.ones(()) > 0)
    assert bool(torch.ones(()) > 0)  # restored after
