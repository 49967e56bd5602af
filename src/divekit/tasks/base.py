"""Objectives: what the model-agnostic trainer asks of a learning problem, and the task registry.

An :class:`Objective` turns a batch (already on the device) into a loss and
metric sums, and turns sums into metrics. It holds no data: batching,
splits and the device-side preparation of batches belong to a data source
(:mod:`divekit.data.sources`). The trainer owns everything else: devices,
the optimiser, precision, checkpoints, metric files and distribution.

Metrics travel as *sums* (total loss, number correct, number of examples)
so the trainer can add them across steps and processes on the device, and
read them on the host only now and then, before :meth:`Objective.metrics`
turns them into averages.

A *task* (``classification``, ``language-model``, ``seq2seq``,
``regression``) pairs an objective with the data source that feeds it and
the options both read (the run config's ``task.options``); tasks register
in :data:`TASK_REGISTRY` when :mod:`divekit.tasks` is imported.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from divekit.errors import ConfigError
from divekit.registry import Registry, check_task


@dataclass
class StepOutput:
    """One training step's loss (to back-propagate) and its metric sums (``count`` included)."""

    loss: torch.Tensor
    sums: dict[str, torch.Tensor | float]


class Objective(abc.ABC):
    """A loss and its metrics for one task.

    Subclasses set ``task`` (the forward contract they train), ``unit`` (what
    throughput counts) and ``monitor`` / ``monitor_mode``: the metric, without
    its split prefix, that picks the best checkpoint on the validation split.
    """

    task: str = ""
    unit: str = "examples"
    monitor: str = "loss"
    monitor_mode: str = "min"

    @abc.abstractmethod
    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        """Run ``model`` on a batch that is on the device; return the loss and metric sums."""

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor | float]:
        """Metric sums of one evaluation batch (the trainer runs it in eval mode, without gradients)."""
        return self.train_step(model, batch).sums

    @abc.abstractmethod
    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        """Averages from sums, named ``{prefix}_loss``, ``{prefix}_acc``..."""

    def begin_epoch(self, *, epoch: int) -> None:
        """Reset per-epoch state (a recurrent hidden state carried between batches)."""

    def begin_eval(self) -> None:
        """Reset state carried across one evaluation pass."""

    def check_output(self, model: nn.Module, batch: Any) -> None:
        """Run ``model`` once on ``batch`` and raise ConfigError if its output does not fit this task."""

    def state_dict(self) -> dict[str, Any]:
        """State carried between steps that a mid-epoch checkpoint must keep."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def describe_shape(output: Any) -> str:
    """A model output's shape for messages: ``(32, 10)``, or the type when it is not a tensor."""
    if torch.is_tensor(output):
        return str(tuple(output.shape))
    if isinstance(output, (tuple, list)):
        return "(" + ", ".join(describe_shape(o) for o in output) + ")"
    return type(output).__name__


def output_mismatch(what: str, got: Any, expected: str) -> ConfigError:
    """The error for a model whose output does not fit the task."""
    return ConfigError(f"the model's output does not fit the {what} task: it returned {describe_shape(got)} for one "
                       f"batch, expected {expected}; fix the model's last layer or forward, or choose another task")  # fmt: skip


@dataclass(frozen=True)
class TaskEntry:
    """A task: the options it reads, the data source it builds, and its objective.

    Attributes:
        name: one of :data:`divekit.registry.TASKS`.
        options: the dataclass of the run config's ``task.options`` for this task.
        source: ``source(data, options, *, batch_size, eval_batch_size, val_split, split_seed,
            model_input_size)`` -> a :class:`~divekit.data.sources.DataSource` over a loaded data set.
        objective: ``objective(source, options)`` -> the :class:`Objective`.
        default_objective: ``default_objective()`` -> the objective for batches a user brings
            (``fit(model, loader, task=name)``), or ``None`` when the task needs facts only a
            data source knows.
        description: one line for ``divekit tasks``.
    """

    name: str
    options: type
    source: Callable[..., Any]
    objective: Callable[[Any, Any], Objective]
    default_objective: Callable[[], Objective] | None
    description: str

    def parse_options(self, values: dict[str, Any]) -> Any:
        """``task.options`` as this task's options dataclass, unknown or ill-typed keys refused."""
        from divekit.schema import from_dict

        return from_dict(self.options, values, where="task.options")

    def option_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.options)]


TASK_REGISTRY: Registry[TaskEntry] = Registry("task")


def register_task(entry: TaskEntry, *, module: str) -> TaskEntry:
    """Register ``entry`` under its name (one of the shared task names)."""
    check_task(entry.name)
    return TASK_REGISTRY.add(entry.name, entry, module=module)


def get_task(name: str) -> TaskEntry:
    """The task called ``name`` (tasks register when :mod:`divekit.tasks` is imported)."""
    import divekit.tasks  # noqa: F401  (registers the tasks)

    return TASK_REGISTRY.get(name)
