"""Regression: features -> predictions, mean squared error (notes §6.1); k-step-ahead forecasts of a series.

A model trained on one-step windows predicts one step ahead well;
predicting ``k`` steps ahead feeds its own predictions back as features,
and the errors accumulate (:func:`forecast`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.csv_series import CsvTable
from divekit.data.series import SeriesData
from divekit.data.sources.series import SeriesOptions, SeriesSource, lag_features
from divekit.errors import ConfigError
from divekit.tasks.base import Objective, StepOutput, TaskEntry, output_mismatch, register_task


class Regression(Objective):
    """Mean squared error of ``model(X)`` against ``y`` (same shape). Batches are ``(X, y)``."""

    task = "regression"

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        X, y = batch[0], batch[1]
        loss = F.mse_loss(model(X), y)
        return StepOutput(loss, {"loss": loss.detach() * y.shape[0], "count": y.shape[0]})

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor | float]:
        X, y = batch[0], batch[1]
        return {"loss": F.mse_loss(model(X).float(), y, reduction="sum"), "count": y.shape[0]}

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        return {f"{prefix}_loss": float(sums["loss"]) / max(float(sums["count"]), 1.0)}

    def check_output(self, model: nn.Module, batch: Any) -> None:
        X, y = batch[0], batch[1]
        out = model(X)
        if not torch.is_tensor(out) or out.shape != y.shape:
            raise output_mismatch("regression", out, f"predictions shaped like the targets, {tuple(y.shape)}")


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


def series_source(data: Any, options: SeriesOptions, **kwargs: Any) -> SeriesSource:
    """The data source of a series: as it is, or the chosen column of a CSV file."""
    if isinstance(data, CsvTable):
        data = data.series(options.column)
    elif options.column is not None:
        raise ConfigError(f"task.options.column chooses a column of a csv-series file; {data.name} has none")
    return SeriesSource(data, options, **kwargs)


register_task(TaskEntry(
    name="regression",
    options=SeriesOptions,
    source=series_source,
    objective=lambda source, options: Regression(),
    default_objective=Regression,
    description="features -> predictions; mean squared error (notes §6.1)",
), module=__name__)  # fmt: skip
