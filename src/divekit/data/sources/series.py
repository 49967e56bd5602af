"""A series as lagged windows for autoregressive regression (notes §6.1 序列模型).

Under a Markov assumption of order ``tau`` the features of example ``t`` are
``x_{t-tau}, ..., x_{t-1}`` and its label is ``x_t``. The first ``n_train``
windows train (``data.val_split`` holds out the last fraction of them for
validation, keeping time order), the rest test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from divekit.data.batching import EpochBatches
from divekit.data.loader import TensorBatches
from divekit.data.series import SeriesData
from divekit.data.sources.base import DataSource, check_fraction
from divekit.errors import ConfigError


@dataclass
class SeriesOptions:
    """Options of the series-regression task (the run config's ``task.options``).

    Attributes:
        tau: how many past values form the features (the Markov order).
        column: ``csv-series``: the CSV column to forecast, by its header name.
    """

    tau: int = 4
    column: str | None = None

    def __post_init__(self) -> None:
        if self.tau < 1:
            raise ConfigError(f"task.options.tau must be at least 1, got {self.tau}")


def lag_features(values: torch.Tensor, tau: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of ``tau`` values ``(T - tau, tau)`` and the value after each ``(T - tau, 1)``."""
    T = len(values)
    features = torch.stack([values[i:T - tau + i] for i in range(tau)], dim=1)  # (T - tau, tau)
    return features, values[tau:].reshape(-1, 1)


class SeriesSource(DataSource):
    """Lagged windows of one series: the first ``n_train`` train (their tail validates), the rest test."""

    task = "regression"

    def __init__(self, data: SeriesData, options: SeriesOptions, *, batch_size: int, eval_batch_size: int,
                 val_split: float = 0.0, split_seed: int = 0, model_input_size: Any = None) -> None:  # fmt: skip
        check_fraction(val_split)
        if not 0 < data.n_train < len(data.values) - options.tau:
            raise ConfigError(f"task.options.tau={options.tau} leaves no test windows in a series of "
                              f"{len(data.values)} values")  # fmt: skip
        self.data, self.options = data, options
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        X, y = lag_features(data.values, options.tau)
        n_val = round(data.n_train * val_split)
        cut = data.n_train - n_val
        self.splits = {"train": (X[:cut], y[:cut]), "val": (X[cut:data.n_train], y[cut:data.n_train]),
                       "test": (X[data.n_train:], y[data.n_train:])}  # fmt: skip

    def train_batches(self, *, seed: int) -> EpochBatches:
        return TensorBatches(self.splits["train"], batch_size=self.batch_size, shuffle=True, seed=seed)

    def eval_batches(self) -> dict[str, Iterable[Any]]:
        return {name: TensorBatches(self.splits[name], batch_size=self.eval_batch_size)
                for name in ("val", "test") if len(self.splits[name][0])}  # fmt: skip

    def model_options(self) -> dict[str, Any]:
        return {"in_features": self.options.tau}

    def info(self) -> dict[str, Any]:
        return {**self.data.info(), "tau": self.options.tau, "model_options": self.model_options()}
