"""Sane defaults: ``divekit train MODEL`` with no other option picks data and a recipe on which the model learns.

Every registered model trains a few steps on its default data with its default recipe (optimiser, learning
rate, initialisation, input size, clipping), on a few small batches seen again each epoch: the training loss
must stay finite, never blow up, and fall by 5% (the mean of the last quarter of the epochs against the
first). AlexNet, VGG and GoogLeNet with the digits' Adam at 0.01 used to blow up, LeNet to sit at chance.
"""

from __future__ import annotations

import math

import pytest

from divekit.engine.trainer import Trainer
from divekit.models import get_model_entry, list_models
from divekit.runs import resolve_config
from divekit.runs.build import optimizer_groups
from tests.helpers import build_parts

# Per task: a few small batches per epoch, seen again every epoch; the recipe's optimiser, rate and init stay.
SMALL = {
    "classification": {"task.options.train_subset": 8, "data.batch_size": 8, "train.epochs": 24},
    "language-model": {"task.options.max_tokens": 3000, "train.epochs": 8},  # 2 batches of 32 x 35 tokens
    "seq2seq": {"task.options.num_examples": 64, "data.batch_size": 64, "task.options.bleu": False,
                "train.epochs": 24},
    "regression": {"train.epochs": 3},  # a few hundred windows: many steps per epoch already
}
SMALLEST_INPUT = {"alexnet": 67}  # where the recipe's input is larger than the network needs (speed only)


@pytest.mark.parametrize("name", list_models())
def test_every_model_learns_on_its_default_data(name):
    task = get_model_entry(name).task
    overrides = {**SMALL[task], "train.progress": False, "train.threads": 1}
    if name in SMALLEST_INPUT:
        overrides["task.options.resize"] = SMALLEST_INPUT[name]
    config = resolve_config(name, overrides=overrides)
    parts = build_parts(config)  # as a run builds them; trained without the held-out splits, for speed
    trainer = Trainer(parts.model, parts.objective, parts.source.train_batches(seed=config.train.seed),
                      train=config.train, optim=config.optim, transfer=parts.source.transfer,
                      param_groups=optimizer_groups(config, parts.model), log=lambda message: None)  # fmt: skip
    losses = [record["train_loss"] for record in trainer.fit().history]
    assert all(math.isfinite(loss) for loss in losses), (name, losses)
    assert max(losses) < 5 * losses[0], (name, losses)  # no blow-up (AlexNet's first epoch was 208,884)
    tail = losses[-max(1, len(losses) // 4):]
    assert sum(tail) / len(tail) < 0.95 * losses[0], (name, losses)


@pytest.mark.parametrize("name", list_models("classification"))
def test_image_models_train_on_the_digits_at_a_size_their_architecture_accepts(name):
    config = resolve_config(name)
    size = config.task.options.get("resize") or get_model_entry(name).input_size[-1]
    assert config.data.name == "digits" and size <= 96, (name, size)  # 8x8 digits gain nothing from 224x224
