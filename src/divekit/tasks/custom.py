"""An objective from any loss function, with optional metric functions (for ``fit(model, loader, task=loss_fn)``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from divekit.tasks.base import Objective, StepOutput

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float]


class LossObjective(Objective):
    """``loss_fn(model(*inputs), target)`` for batches ``(*inputs, target)``.

    Args:
        loss_fn: returns the batch's mean loss (as ``nn.CrossEntropyLoss()`` does).
        metrics: name -> ``fn(output, target)`` giving the batch's mean of that metric;
            reported per split as ``{split}_{name}``, averaged over examples.
        monitor, mode: the metric that picks the best checkpoint (default ``loss``, lower is better).
    """

    task = "custom"

    def __init__(self, loss_fn: Callable[[Any, torch.Tensor], torch.Tensor], *,
                 metrics: Mapping[str, MetricFn] | None = None, monitor: str = "loss", mode: str = "min") -> None:  # fmt: skip
        self.loss_fn, self.metric_fns = loss_fn, dict(metrics or {})
        if "loss" in self.metric_fns or "count" in self.metric_fns:
            raise ValueError("metric names 'loss' and 'count' are taken; name your metrics otherwise")
        self.monitor, self.monitor_mode = monitor, mode

    def _forward(self, model: nn.Module, batch: Any) -> tuple[Any, torch.Tensor, int]:
        *inputs, target = batch
        output = model(*inputs)
        return output, target, len(target)

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        output, target, n = self._forward(model, batch)
        loss = self.loss_fn(output, target)
        return StepOutput(loss, self._sums(output, target, loss.detach(), n))

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor | float]:
        output, target, n = self._forward(model, batch)
        return self._sums(output, target, self.loss_fn(output, target), n)

    def _sums(self, output: Any, target: torch.Tensor, loss: torch.Tensor, n: int) -> dict[str, Any]:
        sums: dict[str, Any] = {"loss": loss * n, "count": n}
        with torch.no_grad():
            for name, fn in self.metric_fns.items():
                value = fn(output.detach() if torch.is_tensor(output) else output, target)
                sums[name] = (value.detach() if torch.is_tensor(value) else float(value)) * n
        return sums

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        count = max(float(sums.get("count", 0.0)), 1.0)
        return {f"{prefix}_{name}": float(sums[name]) / count for name in ("loss", *self.metric_fns) if name in sums}
