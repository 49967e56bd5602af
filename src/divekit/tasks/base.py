"""The task interface: what the model-agnostic trainer asks of a learning problem.

A task owns the data of one run and knows how to turn a batch into a loss and
how to score a model. The trainer owns everything else: devices, the
optimiser, precision, checkpoints, metrics files and distribution. New task
families (language models, sequence-to-sequence, regression) plug in by
subclassing :class:`Task` and calling :func:`register_task`; the trainer does
not change.

Metrics travel as *sums* (e.g. total loss, number correct, number of
examples) so the trainer can add them across steps and processes before the
task turns them into averages with :meth:`Task.metrics`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from divekit.errors import ConfigError


class BatchSource(Protocol):
    """What the trainer needs from a training loader (see ``TensorBatches``)."""

    def set_epoch(self, epoch: int) -> None: ...
    def iter_from(self, start_batch: int = 0) -> Iterator[Any]: ...
    def __len__(self) -> int: ...


@dataclass
class StepOutput:
    """One training step's loss (to back-propagate) and its metric sums."""

    loss: torch.Tensor
    sums: dict[str, torch.Tensor | float]


@dataclass
class Runtime:
    """Where and how the trainer runs the task (set once, before training)."""

    device: torch.device = torch.device("cpu")
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1


class Task(abc.ABC):
    """A learning problem: its data, its loss and its metrics.

    Subclasses set ``kind`` (the data kind they consume), ``families`` (the
    model families they can train), ``unit`` (what throughput counts) and the
    metric to ``monitor`` for early stopping and the best checkpoint.
    """

    kind: str = ""
    families: tuple[str, ...] = ()
    unit: str = "examples"
    monitor: str = "test_loss"
    monitor_mode: str = "min"
    runtime: Runtime

    def setup(self, runtime: Runtime) -> None:
        """Record the device and distribution settings before training."""
        self.runtime = runtime

    @abc.abstractmethod
    def model_options(self) -> dict[str, Any]:
        """Facts about the data a model builder may need (``num_classes``...)."""

    @abc.abstractmethod
    def train_batches(self, *, seed: int) -> BatchSource:
        """The training loader for this process."""

    @abc.abstractmethod
    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        """Move ``batch`` to the device, run the model and return the loss."""

    @abc.abstractmethod
    def eval_sums(self, model: nn.Module) -> dict[str, float]:
        """Metric sums of ``model`` (in eval mode, no grad) on this process's test share."""

    @abc.abstractmethod
    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        """Averages from sums, named ``{prefix}_loss``, ``{prefix}_acc``..."""

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """What prediction needs later (class names, vocabulary...), saved as ``task.json``."""

    def begin_epoch(self, model: nn.Module, *, epoch: int) -> None:
        """Reset per-epoch state (e.g. a recurrent hidden state)."""

    def count(self, batch: Any) -> int:
        """How many ``unit``s a batch holds (examples by default)."""
        return int(batch[0].shape[0])

    def state_dict(self) -> dict[str, Any]:
        """State carried between steps that a mid-epoch checkpoint must keep."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def prediction_extras(self) -> dict[str, str]:
        """Extra files (name -> text) to save in the run folder, e.g. a vocabulary."""
        return {}


@dataclass(frozen=True)
class TaskEntry:
    kind: str
    build: Callable[..., Task]
    config_cls: type


_TASKS: dict[str, TaskEntry] = {}


def register_task(kind: str, config_cls: type) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    """Register the builder of the task for data kind ``kind``.

    The builder is called as ``build(data, config, *, batch_size,
    eval_batch_size, model_entry)`` where ``config`` is an instance of
    ``config_cls`` made from the run config's ``task`` section.
    """

    def decorate(build: Callable[..., Task]) -> Callable[..., Task]:
        if kind in _TASKS:
            raise ValueError(f"a task for data kind {kind!r} is already registered")
        _TASKS[kind] = TaskEntry(kind, build, config_cls)
        return build

    return decorate


def get_task_entry(kind: str) -> TaskEntry:
    if kind not in _TASKS:
        raise ConfigError(f"no task is registered for data of kind {kind!r}")
    return _TASKS[kind]
