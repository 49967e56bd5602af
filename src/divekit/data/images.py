"""Image-classification data held in memory as uint8 tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from divekit.errors import DataError


@dataclass
class ImageSplit:
    """One split: ``images`` uint8 ``(N, C, H, W)`` and ``labels`` int64 ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass
class ImageClassificationData:
    """A labelled image data set with fixed train and test splits."""

    name: str
    train: ImageSplit
    test: ImageSplit
    class_names: tuple[str, ...]

    task = "classification"

    def __post_init__(self) -> None:
        if self.train.images.shape[1:] != self.test.images.shape[1:]:
            raise DataError(f"{self.name}: train and test images differ in shape")
        for split in (self.train, self.test):
            if len(split) and int(split.labels.max()) >= len(self.class_names):
                raise DataError(f"{self.name}: a label exceeds the {len(self.class_names)} class names")

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train.images.shape[2:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def info(self) -> dict[str, Any]:
        """Facts a trained model needs at prediction time, saved in its run folder."""
        return {
            "task": self.task,
            "name": self.name,
            "in_channels": self.in_channels,
            "image_size": list(self.image_size),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
        }
