"""Batches a user brings (a ``DataLoader``, a list, a callable) as a data source, for :func:`divekit.fit`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from divekit.data.batching import EpochBatches, as_epoch_batches
from divekit.data.sources.base import DataSource
from divekit.errors import ConfigError


class UserBatches(DataSource):
    """The user's training batches and, if given, validation and test batches, used as they are.

    Args:
        train: training batches (see :func:`divekit.data.batching.as_epoch_batches`).
        val, test: held-out batches (any re-iterable); ``val`` picks the best checkpoint.
        task: the task name recorded with the run.
    """

    def __init__(self, train: Any, *, val: Iterable[Any] | None = None, test: Iterable[Any] | None = None,
                 task: str = "custom") -> None:  # fmt: skip
        for name, held_out in (("val", val), ("test", test)):
            if held_out is not None and iter(held_out) is held_out:
                raise ConfigError(f"the {name} batches are a one-shot iterator, empty after the first evaluation; "
                                  "pass a list or a DataLoader")  # fmt: skip
        self.train, self.held_out, self.task = train, {"val": val, "test": test}, task

    def train_batches(self, *, seed: int) -> EpochBatches:
        return as_epoch_batches(self.train, seed=seed)

    def eval_batches(self) -> dict[str, Iterable[Any]]:
        return {name: batches for name, batches in self.held_out.items() if batches is not None}

    def model_options(self) -> dict[str, Any]:
        return {}

    def info(self) -> dict[str, Any]:
        return {"task": self.task, "data": "python"}
