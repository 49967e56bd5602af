"""Optimisers and learning-rate schedules built from :class:`OptimConfig`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from divekit.runs.config import OptimConfig


def build_optimizer(
    params: nn.Module | Iterable[dict[str, Any]], config: OptimConfig
) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam or AdamW over a model or explicit parameter groups.

    Parameter groups may carry their own ``lr`` (e.g. a fine-tuned head
    trained faster than the backbone); the others use ``config.lr``.
    """
    groups = [{"params": [p for p in params.parameters() if p.requires_grad]}] if isinstance(params, nn.Module) else list(params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(step: int, *, config: OptimConfig, steps_per_epoch: int, epochs: int) -> float:
    """The multiplier of the base learning rate at optimiser step ``step``.

    Linear warm-up over ``warmup_epochs``, then ``constant``, ``step`` decay
    (times ``gamma`` every ``step_size`` epochs) or ``cosine`` decay to zero.
    """
    warmup = config.warmup_epochs * steps_per_epoch
    if warmup and step < warmup:
        return (step + 1) / warmup
    if config.schedule == "step":
        return config.gamma ** (step // (config.step_size * steps_per_epoch))
    if config.schedule == "cosine":
        total = max(epochs * steps_per_epoch - warmup, 1)
        progress = min((step - warmup) / total, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, *, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler following :func:`lr_factor`; its state_dict is plain data."""

    def factor(step: int) -> float:
        return lr_factor(step, config=config, steps_per_epoch=steps_per_epoch, epochs=epochs)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
