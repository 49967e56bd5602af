"""The learning-rate finder for any model on any batches, or for a configured run (``divekit lr-find``).

:func:`lr_find` takes what :func:`divekit.fit` takes and builds the same
pieces (threads, seeds, the data source, the objective, the optimiser's
parameter groups) before sweeping; see :mod:`divekit.engine.lr_find`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from divekit.data.registry import get_dataset_entry
from divekit.data.sources.batches import UserBatches
from divekit.device import resolve_device
from divekit.engine.distributed import DistContext
from divekit.engine.lr_find import LRFinderResult, find_lr, kept_random_state
from divekit.runs.build import optimizer_groups
from divekit.runs.config import RunConfig
from divekit.runs.fit import Task, as_objective, fit_config
from divekit.runs.train import Prepared, prepare
from divekit.tasks.custom import MetricFn


def lr_find(model: nn.Module, train: Any, *, task: Task = None, metrics: Mapping[str, MetricFn] | None = None,
            optimizer: str | None = None, device: str | None = None,
            config: Mapping[str, Any] | RunConfig | None = None, start_lr: float = 1e-6, end_lr: float = 10.0,
            num_steps: int = 100, rule: str = "edge/10") -> LRFinderResult:  # fmt: skip
    """Sweep the learning rate for ``model`` on ``train``; the model is left exactly as it was.

    Args:
        model, train, task, metrics, optimizer, device, config: as for :func:`divekit.fit`
            (``train`` may name a divekit data set; ``config`` sets e.g. ``optim.momentum``).
        start_lr, end_lr, num_steps: the sweep (it stops early when the loss diverges).
        rule: ``edge/10``, ``min/10`` or ``steepest`` (see :func:`divekit.engine.lr_find.suggest`).

    Returns the losses, a suggested learning rate and the rule that picked it;
    ``result.figure()`` plots them (a notebook shows the result as that plot).
    """
    shortcuts = {"optimizer": optimizer, "device": device}
    if isinstance(train, str):
        run_config = fit_config(model, data=train, task=get_dataset_entry(train).task, config=config,
                                shortcuts=shortcuts)  # fmt: skip
        source, objective = None, None if task is None else as_objective(task, metrics=metrics)
    else:
        objective = as_objective(task, metrics=metrics)
        run_config = fit_config(model, data="python", task=objective.task, config=config, shortcuts=shortcuts)
        source = UserBatches(train, task=objective.task)
    with kept_random_state():  # preparing seeds the generators, as fit does: put them back too
        prepared = prepare(run_config, dist=DistContext(), model=model, source=source, objective=objective)
        return sweep(prepared, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps, rule=rule)


def lr_find_config(config: RunConfig, *, start_lr: float = 1e-6, end_lr: float = 10.0, num_steps: int = 100,
                   rule: str = "edge/10", model_file: str | None = None) -> LRFinderResult:  # fmt: skip
    """The sweep for a run config (a registered model or a model file, on a named data set)."""
    prepared = prepare(config.validate(), dist=DistContext(), model_file=model_file)
    return sweep(prepared, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps, rule=rule)


def sweep(prepared: Prepared, **options: Any) -> LRFinderResult:
    """Run :func:`~divekit.engine.lr_find.find_lr` on prepared pieces, on the config's device."""
    config, model = prepared.config, prepared.model
    device = resolve_device(config.train.device)
    home = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.to(device)
    try:
        return find_lr(model, prepared.objective, prepared.source.train_batches(seed=config.train.seed),
                       optim=config.optim, param_groups=optimizer_groups(config, model),
                       transfer=prepared.source.transfer, device=device, seed=config.train.seed, **options)  # fmt: skip
    finally:
        model.to(home)
