"""The front door: train any ``nn.Module`` on any batches in one call, as the book's ``train_ch6`` does.

``fit(net, train_iter, val_iter, epochs=10, lr=0.9)`` runs the same engine as
``divekit train``: progress, metric files and curves, checkpoints and
bit-exact resume, mixed precision, compile, channels-last, NaN/Inf
handling, early stopping on the validation split, callbacks, and
data-parallel training under ``torchrun`` (every process reads each batch
and keeps its share of the rows, so N processes compute exactly what one
process computes with the whole batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from divekit.data.batching import Rows, take_rows
from divekit.data.registry import get_dataset_entry
from divekit.data.sources.batches import UserBatches
from divekit.device import resolve_device
from divekit.engine.callbacks import Callback
from divekit.engine.evaluation import evaluate_splits
from divekit.engine.result import RunResult
from divekit.errors import ConfigError
from divekit.choices import TASKS
from divekit.runs.config import RunConfig, set_dotted
from divekit.runs.train import run
from divekit.tasks.base import Objective, get_task
from divekit.tasks.custom import LossObjective, MetricFn

Task = str | Objective | Callable[..., torch.Tensor] | None
SHORTCUTS = {"epochs": "train.epochs", "lr": "optim.lr", "optimizer": "optim.optimizer", "device": "train.device"}


def as_objective(task: Task, *, metrics: Mapping[str, MetricFn] | None = None) -> Objective:
    """An objective from a task name, an :class:`Objective`, or a loss function (with ``metrics``)."""
    if isinstance(task, Objective):
        return task
    if task is None or isinstance(task, str):
        entry = get_task(task or "classification")
        if entry.default_objective is None:
            raise ConfigError(f"the {entry.name} task needs facts about your data; pass the objective itself, e.g. "
                              "task=divekit.tasks.Seq2Seq(bos=..., eos=...)")  # fmt: skip
        return entry.default_objective()
    if callable(task):
        return LossObjective(task, metrics=metrics)
    raise ConfigError(f"task must be a task name ({', '.join(TASKS)}), an Objective or a loss function, "
                      f"not a {type(task).__name__}")  # fmt: skip


def fit_config(model: nn.Module, *, data: str, task: str | None, config: Mapping[str, Any] | RunConfig | None,
               shortcuts: dict[str, Any]) -> RunConfig:  # fmt: skip
    """The run config of a ``fit`` call: defaults < a data set's recipe < ``config`` < the keyword shortcuts."""
    if isinstance(config, RunConfig):
        layered = config.to_dict()
    else:
        layered = RunConfig().to_dict()
        if data != "python":
            for key, value in get_dataset_entry(data).recipe.items():
                set_dotted(layered, key, value)
        for key, value in dict(config or {}).items():
            set_dotted(layered, key, value)
    layered["model"].update(name=type(model).__name__, source="object")
    layered["data"]["name"] = data
    layered["task"]["name"] = task if task in TASKS else None
    for name, value in shortcuts.items():
        if value is not None:
            set_dotted(layered, SHORTCUTS[name], value)
    return RunConfig.from_dict(layered).validate()


def fit(
    model: nn.Module,
    train: Any,
    val: Iterable[Any] | None = None,
    *,
    test: Iterable[Any] | None = None,
    task: Task = None,
    metrics: Mapping[str, MetricFn] | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    device: str | None = None,
    config: Mapping[str, Any] | RunConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Train ``model`` on ``train`` and return the history, the final and best metrics and the run folder.

    Args:
        model: any ``nn.Module`` (trained in place; also returned as ``result.model``).
        train: the training batches: a ``DataLoader``, a list of batches, a function returning
            a fresh iterator each epoch, or the name of a divekit data set (``"fashion-mnist"``).
        val: validation batches: they pick the best checkpoint and drive early stopping.
            Without them no "best" is claimed and the last epoch is what counts.
        test: test batches, reported every epoch, never used to choose anything.
        task: ``"classification"`` (default), ``"language-model"``, ``"regression"``, an
            :class:`~divekit.tasks.base.Objective` (e.g. ``Seq2Seq(bos=..., eos=...)``), or a loss
            function ``loss(output, target)`` for batches ``(*inputs, target)``.
        metrics: with a loss function: ``{name: fn(output, target)}`` batch means to report.
        epochs, lr, optimizer, device: shortcuts for ``train.epochs``, ``optim.lr``, ``optim.optimizer``, ``train.device``.
        config: any other settings as dotted keys, e.g. ``{"optim.momentum": 0.9, "train.precision": "bf16",
            "data.val_split": 0.1}`` (see :class:`~divekit.runs.config.RunConfig`), or a whole RunConfig.
        out_dir: write a run folder there (metrics, curves, checkpoints); ``None`` keeps everything in memory.
        resume: continue the run in ``out_dir`` from its last checkpoint (same model and batches).
        callbacks: :class:`~divekit.engine.callbacks.Callback` objects.
        log: where one-line messages go (default: stderr).
    """
    shortcuts = {"epochs": epochs, "lr": lr, "optimizer": optimizer, "device": device}
    if isinstance(train, str):
        if val is not None or test is not None:
            raise ConfigError("a divekit data set brings its own splits: set data.val_split in config instead "
                              "of passing val or test batches")  # fmt: skip
        entry = get_dataset_entry(train)
        run_config = fit_config(model, data=train, task=entry.task, config=config, shortcuts=shortcuts)
        source = None  # built from the config, as for `divekit train`
        objective = None if task is None else as_objective(task, metrics=metrics)
    else:
        objective = as_objective(task, metrics=metrics)
        run_config = fit_config(model, data="python", task=objective.task, config=config, shortcuts=shortcuts)
        source = UserBatches(train, val=val, test=test, task=objective.task)
    return run(run_config, out_dir=out_dir, resume=resume, write=out_dir is not None, log=log, callbacks=callbacks,
               model=model, source=source, objective=objective)  # fmt: skip


def evaluate(model: nn.Module, batches: Iterable[Any], *, task: Task = None,
             metrics: Mapping[str, MetricFn] | None = None, device: str = "auto", split: str = "test") -> dict[str, float]:  # fmt: skip
    """Metrics of ``model`` on ``batches`` (named ``{split}_loss``, ``{split}_acc``...), in eval mode, no gradients."""
    objective = as_objective(task, metrics=metrics)
    dev = resolve_device(device)
    model.to(dev)
    return evaluate_splits(model, objective, {split: batches}, device=dev)


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor | Iterable[Any], *, device: str = "auto",
            batch_size: int = 256) -> torch.Tensor | list[Any]:  # fmt: skip
    """The model's outputs for ``inputs``, in eval mode, concatenated on the CPU.

    ``inputs`` is a tensor of examples (fed ``batch_size`` at a time) or an
    iterable of batches; a batch that is a tuple feeds its first element
    (so a ``DataLoader`` of ``(X, y)`` works). Tuple outputs (a language
    model's ``(logits, state)``) keep their first element.
    """
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    if torch.is_tensor(inputs):
        inputs = [take_rows(inputs, slice(i, i + batch_size)) for i in range(0, len(inputs), batch_size)]
    outputs = []
    try:
        for batch in inputs:
            X = batch[0] if isinstance(batch, (tuple, list)) and not isinstance(batch, Rows) else batch
            out = model(X.to(dev))
            outputs.append((out[0] if isinstance(out, tuple) else out).cpu())
    finally:
        model.train(was_training)
    return torch.cat(outputs) if outputs and all(torch.is_tensor(o) for o in outputs) else outputs
