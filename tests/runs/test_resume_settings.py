"""What changes the numbers on the CPU is recorded with a run, shown in its first line, and kept on resume (issue 18)."""

import json
import signal

import pytest
import torch

import divekit.device
from divekit.engine.trainer import Callback, TrainingInterrupted
from divekit.io import load
from divekit.runs import resolve_config, resume, train

OVERRIDES = {"train.epochs": 2, "train.progress": False, "data.batch_size": 64}


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, step):
        if step == self.step:
            trainer.request_stop(signal.SIGTERM)


def weights(folder):
    return load(folder / "checkpoints" / "last.pt")["model"]


def test_resume_keeps_the_recorded_thread_count_whatever_the_default_says(tmp_path, monkeypatch):
    monkeypatch.setattr(divekit.device, "default_threads", lambda local_world_size=1: 2)
    train(resolve_config("lenet", overrides=OVERRIDES), out_dir=tmp_path / "straight", log=lambda m: None)
    with pytest.raises(TrainingInterrupted):
        train(resolve_config("lenet", overrides=OVERRIDES), out_dir=tmp_path / "cut", log=lambda m: None,
              callbacks=[StopAt(30)])  # fmt: skip
    saved = json.loads((tmp_path / "cut" / "config.json").read_text())["train"]
    assert saved["threads"] == 2 and saved["channels_last"] is True and saved["precision"] == "32"
    # the machine got busier: the default would now pick 1 thread
    monkeypatch.setattr(divekit.device, "default_threads", lambda local_world_size=1: 1)
    lines = []
    resume(tmp_path / "cut", log=lines.append)
    assert torch.get_num_threads() == 2 and "(2 threads)" in lines[0]
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_different_thread_count_changes_the_weights(tmp_path):
    """What the test above guards against is real: 1 and 2 threads give different weights."""
    results = []
    for threads in (1, 2):
        folder = tmp_path / f"t{threads}"
        train(resolve_config("lenet", overrides={**OVERRIDES, "train.epochs": 1, "train.threads": threads}),
              out_dir=folder, log=lambda m: None)  # fmt: skip
        results.append(weights(folder))
    assert not all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_an_explicit_change_on_resume_says_bit_identity_is_given_up(tmp_path):
    config = resolve_config("mlp", overrides={**OVERRIDES, "train.epochs": 1, "train.threads": 2, "model.options.dropout": 0.1})
    train(config, out_dir=tmp_path / "run", log=lambda m: None)
    lines = []
    resume(tmp_path / "run", changes={"train.threads": 1, "train.epochs": 2}, log=lines.append)
    assert any("train.threads changed from 2 to 1" in line and "not be bit-identical" in line for line in lines)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["threads"] == 1


def test_the_first_line_names_every_setting_that_changes_the_numbers(tmp_path):
    lines = []
    train(resolve_config("mlp", overrides={**OVERRIDES, "train.epochs": 1, "train.threads": 1}), write=False,
          log=lines.append)  # fmt: skip
    header = lines[0]
    for part in ("1 thread)", "precision 32", "compile off", "channels-last off", "deterministic off", "seed 0"):
        assert part in header, part
