"""Augmented training: deterministic under a seed, and bit-identical after resuming mid-epoch."""

from __future__ import annotations

import pytest
import torch

from divekit.cli import main
from divekit.errors import ConfigError
from divekit.engine import checkpoint as ckpt
from divekit.engine.trainer import Callback, Trainer, TrainingInterrupted
from divekit.runs import resolve_config
from divekit.runs.build import build_source
from tests.helpers import make_trainer

AUGMENTED = {"task.options.augment": ["flip", "crop", "color"], "task.options.train_subset": 192, "data.batch_size": 64,
             "train.epochs": 2, "train.progress": False, "train.threads": 1}  # fmt: skip


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if step == self.step:
            trainer.request_stop()


def fit(config, out_dir, *, callbacks=(), resume=False) -> dict[str, torch.Tensor]:
    trainer = make_trainer(config, out_dir, callbacks=callbacks)
    trainer.fit(resume_from=out_dir / "checkpoints" / "last.pt" if resume else None)
    return trainer.raw_model.state_dict()


def test_resume_mid_epoch_with_augmentation_is_bit_identical(tmp_path):
    config = resolve_config("lenet-bn", data="digits", overrides=AUGMENTED)
    straight = fit(config, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        fit(config, tmp_path / "resumed", callbacks=[StopAt(2)])  # epoch 1 has 3 steps: stop inside it
    state = ckpt.load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert state["progress"]["epoch"] == 0 and state["progress"]["batch"] == 2
    resumed = fit(config, tmp_path / "resumed", resume=True)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def first_inputs(overrides: dict) -> torch.Tensor:
    source = build_source(resolve_config("lenet-bn", data="digits", overrides={**AUGMENTED, **overrides}))
    batch = next(source.train_batches(seed=task_seed(overrides)).iter_from(0))
    return source.transfer(batch, device=torch.device("cpu"), channels_last=False, train=True)[0]


def task_seed(overrides: dict) -> int:
    return overrides.get("train.seed", 0)


def test_augmentation_follows_the_seed():
    first, again = first_inputs({}), first_inputs({})
    assert torch.equal(first, again)
    assert not torch.equal(first, first_inputs({"train.seed": 1}))
    assert not torch.equal(first, first_inputs({"task.options.augment": []}))


def test_augmented_batches_reach_the_model_at_the_model_size():
    source = build_source(resolve_config("lenet-bn", data="digits", overrides={**AUGMENTED, "task.options.resize": 32}))
    batch = next(source.train_batches(seed=0).iter_from(0))
    assert len(batch) == 3  # images, labels, augmentation seed
    cpu = torch.device("cpu")
    X, _ = source.transfer(batch, device=cpu, channels_last=False, train=True)
    assert X.shape == (64, 1, 32, 32) and 0 <= X.min() and X.max() <= 1
    plain, _ = source.transfer(batch, device=cpu, channels_last=False, train=False)  # evaluation: the plain resize
    assert not torch.equal(X, plain)


def test_a_sharded_batch_is_augmented_as_the_same_rows_of_the_whole_batch():
    from divekit.data.batching import shard_batch

    source = build_source(resolve_config("lenet-bn", data="digits", overrides=AUGMENTED))
    batch = next(source.train_batches(seed=0).iter_from(0))
    cpu = torch.device("cpu")
    whole, _ = source.transfer(batch, device=cpu, channels_last=False, train=True)
    shares = [source.transfer(shard_batch(batch, rank, 3), device=cpu, channels_last=False, train=True)[0]
              for rank in range(3)]  # fmt: skip
    assert torch.equal(torch.cat(shares), whole)


def test_bad_augment_option_is_one_line(capsys):
    assert main(["train", "lenet-bn", "--augment", "flip,spin", "--no-progress"]) == 2
    assert "unknown augmentation 'spin'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="train_subset"):
        build_source(resolve_config("lenet-bn", data="digits", overrides={"task.options.train_subset": 10**6}))


def test_train_subset_is_fixed_by_its_own_seed():
    sources = [build_source(resolve_config("lenet-bn", data="digits", overrides={"task.options.train_subset": 100,
                                                                                 "train.seed": s})) for s in (0, 1)]  # fmt: skip
    assert len(sources[0].train) == 100
    assert torch.equal(sources[0].train.labels, sources[1].train.labels)
    other = build_source(resolve_config("lenet-bn", data="digits", overrides={"task.options.train_subset": 100,
                                                                             "task.options.subset_seed": 1}))  # fmt: skip
    assert not torch.equal(other.train.images, sources[0].train.images)


def test_data_show_augment_writes_one_image_and_its_versions(tmp_path, capsys):
    out = tmp_path / "aug.png"
    assert main(["data", "show", "digits", "--augment", "flip,crop,color", "--count", "6", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["data", "show", "digits", "--augment", "flip", "--index", "99999"]) == 2
    assert "--index must be between 0 and" in capsys.readouterr().err
