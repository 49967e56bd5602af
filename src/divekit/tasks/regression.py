"""Autoregressive regression on a series, and k-step-ahead forecasts (notes §6.1 序列模型).

Under a Markov assumption of order ``tau`` the features of example ``t`` are
``x_{t-tau}, ..., x_{t-1}`` and its label is ``x_t``. A model trained on
these windows predicts one step ahead well; predicting ``k`` steps ahead
feeds its own predictions back as features, and the errors accumulate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.loader import TensorBatches
from divekit.data.series import SeriesData
from divekit.errors import ConfigError
from divekit.models.registry import ModelEntry
from divekit.tasks.base import StepOutput, Task, register_task


@dataclass
class SeriesTaskConfig:
    """Options of the series-regression task.

    Attributes:
        tau: how many past values form the features (the Markov order).
    """

    tau: int = 4

    def __post_init__(self) -> None:
        if self.tau < 1:
            raise ConfigError(f"task.tau must be at least 1, got {self.tau}")


def lag_features(values: torch.Tensor, tau: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of ``tau`` values ``(T - tau, tau)`` and the value after each ``(T - tau, 1)``."""
    T = len(values)
    features = torch.stack([values[i:T - tau + i] for i in range(tau)], dim=1)  # (T - tau, tau)
    return features, values[tau:].reshape(-1, 1)


@torch.no_grad()
def k_step_predictions(model: nn.Module, values: torch.Tensor, *, tau: int, max_steps: int) -> torch.Tensor:
    """Predictions 1 to ``max_steps`` steps ahead from every window of observations.

    Returns ``(T - tau - max_steps + 1, tau + max_steps)``: columns ``< tau``
    are observations; column ``tau + k - 1`` holds the ``k``-step-ahead
    predictions of ``x`` at times ``tau + k - 1`` onwards (0-based), each
    made from ``tau`` observations and ``k - 1`` of the model's own predictions.
    """
    rows = len(values) - tau - max_steps + 1
    if rows < 1:
        raise ConfigError(f"a series of {len(values)} values is too short for tau={tau} and {max_steps} steps")
    features = values.new_zeros(rows, tau + max_steps)
    for i in range(tau):
        features[:, i] = values[i:i + rows]
    for i in range(tau, tau + max_steps):
        features[:, i] = model(features[:, i - tau:i]).reshape(-1)
    return features


@torch.no_grad()
def multistep_predictions(model: nn.Module, values: torch.Tensor, *, tau: int, start: int) -> torch.Tensor:
    """Observations up to ``start + tau``, then only the model's own predictions, one step at a time."""
    preds = values.clone()
    for t in range(start + tau, len(values)):
        preds[t] = model(preds[t - tau:t].reshape(1, -1)).reshape(())
    return preds


def k_step_errors(model: nn.Module, values: torch.Tensor, *, tau: int, steps: list[int]) -> dict[int, float]:
    """Mean squared error of the ``k``-step-ahead predictions, for each ``k`` in ``steps``."""
    features = k_step_predictions(model, values, tau=tau, max_steps=max(steps))
    rows = features.shape[0]
    return {k: F.mse_loss(features[:, tau + k - 1], values[tau + k - 1:tau + k - 1 + rows]).item() for k in steps}


Curve = tuple[np.ndarray, np.ndarray]  # (time, value)


@dataclass
class Forecast:
    """Predictions of a series model, for printing and plotting (notes §6.1).

    Attributes:
        tau: the model's Markov order.
        data: the observed series, as (time, value).
        one_step: one-step-ahead predictions of every window.
        multistep: predictions from the end of the training part on, fed only
            the model's own earlier predictions.
        k_step: for each ``k``, the ``k``-step-ahead predictions.
        errors: mean squared error of each ``k``-step-ahead prediction.
        multistep_error: mean squared error of ``multistep``.
    """

    tau: int
    data: Curve
    one_step: Curve
    multistep: Curve
    k_step: dict[int, Curve]
    errors: dict[int, float]
    multistep_error: float


@torch.no_grad()
def forecast(model: nn.Module, data: SeriesData, *, tau: int, steps: list[int]) -> Forecast:
    """One-step, multistep and ``k``-step-ahead predictions of ``model`` on ``data``."""
    model.eval()
    t, x = data.time, data.values
    steps = sorted(set(steps))
    features = k_step_predictions(model, x, tau=tau, max_steps=max(steps))
    rows = features.shape[0]
    k_step = {k: (t[tau + k - 1:tau + k - 1 + rows].numpy(), features[:, tau + k - 1].numpy()) for k in steps}
    one_step = model(lag_features(x, tau)[0]).reshape(-1)
    start = data.n_train + tau
    multi = multistep_predictions(model, x, tau=tau, start=data.n_train)[start:]
    return Forecast(tau, (t.numpy(), x.numpy()), (t[tau:].numpy(), one_step.numpy()), (t[start:].numpy(), multi.numpy()),
                    k_step, k_step_errors(model, x, tau=tau, steps=steps), F.mse_loss(multi, x[start:]).item())  # fmt: skip


class SeriesRegressionTask(Task):
    """Fit a regression model to predict each value of a series from the ``tau`` before it."""

    kind = "sequence"
    families = ("regression",)

    def __init__(self, data: SeriesData, config: SeriesTaskConfig, *, batch_size: int,
                 eval_batch_size: int, model_entry: ModelEntry) -> None:  # fmt: skip
        if not 0 < data.n_train < len(data.values) - config.tau:
            raise ConfigError(f"tau={config.tau} leaves no test windows in a series of {len(data.values)} values")
        self.data = data
        self.config = config
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        X, y = lag_features(data.values, config.tau)
        self.train = (X[:data.n_train], y[:data.n_train])
        self.test = (X[data.n_train:], y[data.n_train:])

    def model_options(self) -> dict[str, Any]:
        return {"in_features": self.config.tau}

    def train_batches(self, *, seed: int) -> TensorBatches:
        rt = self.runtime
        return TensorBatches(self.train, batch_size=self.batch_size, shuffle=True, seed=seed,
                             rank=rt.rank, world_size=rt.world_size)  # fmt: skip

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        X, y = (t.to(self.runtime.device, non_blocking=True) for t in batch)
        loss = F.mse_loss(model(X), y)
        return StepOutput(loss, {"loss": loss.detach() * y.shape[0], "count": y.shape[0]})

    @torch.no_grad()
    def eval_sums(self, model: nn.Module) -> dict[str, float]:
        rt = self.runtime
        batches = TensorBatches(self.test, batch_size=self.eval_batch_size, rank=rt.rank, world_size=rt.world_size)
        loss = count = 0.0
        for X, y in batches:
            y = y.to(rt.device)
            loss += F.mse_loss(model(X.to(rt.device)).float(), y, reduction="sum").item()
            count += y.shape[0]
        return {"loss": loss, "count": count}

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        return {f"{prefix}_loss": float(sums["loss"]) / max(float(sums["count"]), 1.0)}

    def info(self) -> dict[str, Any]:
        return {**self.data.info(), "tau": self.config.tau, "model_options": self.model_options()}


@register_task("sequence", SeriesTaskConfig)
def build_series_regression(data: SeriesData, config: SeriesTaskConfig, **kwargs: Any) -> Task:
    return SeriesRegressionTask(data, config, **kwargs)
