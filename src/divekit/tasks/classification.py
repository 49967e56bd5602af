"""Classification: inputs -> logits ``(N, num_classes)``, cross-entropy loss, accuracy (notes §2.3)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.image_folder import ImageFolder
from divekit.data.sources.image_folder import ImageFolderSource
from divekit.data.sources.images import ImageOptions, ImageSource
from divekit.tasks.base import Objective, StepOutput, TaskEntry, output_mismatch, register_task


class Classification(Objective):
    """Cross-entropy on logits; accuracy of the arg-max.

    Batches are ``(X, y)`` (extra elements are ignored); ``model(X)`` must
    return logits ``(N, num_classes)``.

    Args:
        num_classes: when known, the output width the model must have.
    """

    task = "classification"
    monitor = "acc"
    monitor_mode = "max"

    def __init__(self, *, num_classes: int | None = None) -> None:
        self.num_classes = num_classes

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        X, y = batch[0], batch[1]
        logits = model(X)
        loss = F.cross_entropy(logits, y)
        return StepOutput(loss, self._sums(logits.detach(), y, loss.detach() * y.numel()))

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor | float]:
        X, y = batch[0], batch[1]
        logits = model(X).float()
        return self._sums(logits, y, F.cross_entropy(logits, y, reduction="sum"))

    @staticmethod
    def _sums(logits: torch.Tensor, y: torch.Tensor, loss_sum: torch.Tensor) -> dict[str, torch.Tensor | float]:
        return {"loss": loss_sum, "correct": (logits.argmax(dim=1) == y).sum(), "count": y.numel()}

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        count = max(float(sums["count"]), 1.0)
        return {f"{prefix}_loss": float(sums["loss"]) / count, f"{prefix}_acc": float(sums["correct"]) / count}

    def check_output(self, model: nn.Module, batch: Any) -> None:
        X, y = batch[0], batch[1]
        out = model(X)
        width = self.num_classes or "num_classes"
        expected = f"logits of shape ({len(y)}, {width})"
        if not torch.is_tensor(out) or out.dim() != 2 or out.shape[0] != len(y):
            raise output_mismatch("classification", out, expected)
        if self.num_classes is not None and out.shape[1] != self.num_classes:
            raise output_mismatch("classification", out, expected + f" (the data has {self.num_classes} classes)")
        if len(y) and int(y.max()) >= out.shape[1]:
            raise output_mismatch("classification", out, f"at least {int(y.max()) + 1} classes (the batch has label {int(y.max())})")


def image_source(data: Any, options: ImageOptions, **kwargs: Any) -> ImageSource:
    """The data source of an image data set: in memory as it is, or an image folder decoded first."""
    return (ImageFolderSource if isinstance(data, ImageFolder) else ImageSource)(data, options, **kwargs)


register_task(TaskEntry(
    name="classification",
    options=ImageOptions,
    source=image_source,
    objective=lambda source, options: Classification(num_classes=source.data.num_classes),
    default_objective=Classification,
    description="images -> class logits; cross-entropy, accuracy (notes §2)",
), module=__name__)  # fmt: skip
