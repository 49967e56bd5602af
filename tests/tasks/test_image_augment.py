"""Augmented training: deterministic under a seed, and bit-identical after resuming mid-epoch."""

from __future__ import annotations

import pytest
import torch

from divekit.cli import main
from divekit.errors import ConfigError
from divekit.engine import checkpoint as ckpt
from divekit.runs.run import build_model, build_task, resolve_config
from divekit.engine.seeding import seed_everything
from divekit.engine.trainer import Callback, Trainer, TrainingInterrupted

AUGMENTED = {"task.augment": ["flip", "crop", "color"], "task.train_subset": 192, "data.batch_size": 64,
             "train.epochs": 2, "train.progress": False, "train.threads": 1}  # fmt: skip


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if step == self.step:
            trainer.request_stop()


def fit(config, out_dir, *, callbacks=(), resume=False) -> dict[str, torch.Tensor]:
    seed_everything(config.train.seed)
    task = build_task(config)
    trainer = Trainer(build_model(config, task.model_options()), task, config, out_dir=out_dir, callbacks=callbacks)
    trainer.fit(resume_from=out_dir / "checkpoints" / "last.pt" if resume else None)
    return ckpt.unwrap(trainer.model).state_dict()


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
    from divekit.tasks.base import Runtime

    task = build_task(resolve_config("lenet-bn", data="digits", overrides={**AUGMENTED, **overrides}))
    task.setup(Runtime())
    images, _, *seed = next(task.train_batches(seed=task_seed(overrides)).iter_from(0))
    return task._input(images, *seed)


def task_seed(overrides: dict) -> int:
    return overrides.get("train.seed", 0)


def test_augmentation_follows_the_seed():
    first, again = first_inputs({}), first_inputs({})
    assert torch.equal(first, again)
    assert not torch.equal(first, first_inputs({"train.seed": 1}))
    assert not torch.equal(first, first_inputs({"task.augment": []}))


def test_augmented_batches_reach_the_model_at_the_model_size():
    config = resolve_config("lenet-bn", data="digits", overrides={**AUGMENTED, "task.resize": 32})
    task = build_task(config)
    from divekit.tasks.base import Runtime

    task.setup(Runtime())
    batch = next(task.train_batches(seed=0).iter_from(0))
    assert len(batch) == 3  # images, labels, augmentation seed
    X = task._input(batch[0], batch[2])
    assert X.shape == (64, 1, 32, 32) and 0 <= X.min() and X.max() <= 1
    assert not torch.equal(X, task._input(batch[0]))  # without the seed: the plain resize


def test_bad_augment_option_is_one_line(capsys):
    assert main(["train", "lenet-bn", "--augment", "flip,spin", "--no-progress"]) == 2
    assert "unknown augmentation 'spin'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="train_subset"):
        build_task(resolve_config("lenet-bn", data="digits", overrides={"task.train_subset": 10**6}))


def test_train_subset_is_fixed_by_its_own_seed():
    tasks = [build_task(resolve_config("lenet-bn", data="digits", overrides={"task.train_subset": 100,
                                                                             "train.seed": s})) for s in (0, 1)]  # fmt: skip
    assert len(tasks[0].train_split) == 100
    assert torch.equal(tasks[0].train_split.labels, tasks[1].train_split.labels)
    other = build_task(resolve_config("lenet-bn", data="digits", overrides={"task.train_subset": 100,
                                                                           "task.subset_seed": 1}))  # fmt: skip
    assert not torch.equal(other.train_split.images, tasks[0].train_split.images)


def test_data_show_augment_writes_one_image_and_its_versions(tmp_path, capsys):
    out = tmp_path / "aug.png"
    assert main(["data", "show", "digits", "--augment", "flip,crop,color", "--count", "6", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["data", "show", "digits", "--augment", "flip", "--index", "99999"]) == 2
    assert "--index must be between 0 and" in capsys.readouterr().err
