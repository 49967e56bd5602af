"""Scoring a model on held-out batches: the one loop the trainer, ``evaluate_run`` and ``divekit.evaluate`` share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from divekit.data.batching import iterate_shard, to_device
from divekit.engine.distributed import DistContext, all_reduce_sums
from divekit.tasks.base import Objective


def default_transfer(batch: Any, *, device: torch.device, channels_last: bool, train: bool) -> Any:
    """Every tensor of ``batch`` on ``device`` (4-D floating tensors channels-last if asked)."""
    return to_device(batch, device, channels_last=channels_last)


def eval_sums(model: nn.Module, objective: Objective, batches: Iterable[Any], *, device: torch.device,
              transfer: Callable[..., Any] = default_transfer, channels_last: bool = False,
              dist: DistContext | None = None) -> dict[str, float]:  # fmt: skip
    """Metric sums of ``model`` over ``batches`` (this process's share of each), added across processes.

    The caller puts the model in eval mode and turns gradients off.
    """
    dist = dist or DistContext()
    objective.begin_eval()
    sums: dict[str, Any] = {}
    for batch in iterate_shard(batches, rank=dist.rank, world_size=dist.world_size):
        batch = transfer(batch, device=device, channels_last=channels_last, train=False)
        for key, value in objective.eval_step(model, batch).items():
            value = value.detach().double() if torch.is_tensor(value) else float(value)
            sums[key] = sums[key] + value if key in sums else value
    return all_reduce_sums({k: float(v) for k, v in sums.items()}, dist, device)


def evaluate_splits(model: nn.Module, objective: Objective, splits: dict[str, Iterable[Any]], *,
                    device: torch.device, transfer: Callable[..., Any] = default_transfer, channels_last: bool = False,
                    dist: DistContext | None = None,
                    autocast: contextlib.AbstractContextManager | None = None) -> dict[str, float]:  # fmt: skip
    """Metrics of every split, prefixed with its name; the model in eval mode meanwhile, and training's
    random streams left untouched (evaluating never changes what training does next)."""
    metrics: dict[str, float] = {}
    devices = [device] if device.type == "cuda" else []
    was_training = model.training
    with torch.random.fork_rng(devices=devices), torch.no_grad(), autocast or contextlib.nullcontext():
        model.eval()
        try:
            for split, batches in splits.items():
                sums = eval_sums(model, objective, batches, device=device, transfer=transfer,
                                 channels_last=channels_last, dist=dist)  # fmt: skip
                metrics.update(objective.metrics(sums, split))
        finally:
            model.train(was_training)
    return metrics
