"""Image classification: images -> logits, cross-entropy loss, accuracy."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.augment import BatchAugment, SeededBatches, parse_augment
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.data.loader import TensorBatches
from divekit.errors import ConfigError
from divekit.models.registry import ModelEntry
from divekit.tasks.base import StepOutput, Task, register_task


@dataclass
class ImageTaskConfig:
    """Options of the image-classification task.

    Attributes:
        resize: side length of the square images fed to the model; default
            the model's own input size, or the data's if the model has none.
        train_subset: train on this many training images only, a random
            subset fixed by ``subset_seed`` (to study small data, e.g. fine-tuning).
        subset_seed: chooses the subset; independent of ``train.seed`` so
            runs with different seeds see the same images.
        classes: train and test on these class indices only, relabelled
            0, 1, ... in the order given (to split one data set into a
            pretraining and a fine-tuning task); default all classes.
        augment: training-time augmentations, from ``flip``, ``crop`` and
            ``color`` (a list, or one comma-separated string); see
            :class:`divekit.data.augment.BatchAugment`.
        crop_scale: area range of the random resized crops (fraction of the image).
        color_jitter: brightness, contrast, saturation and hue ranges of ``color``.
    """

    resize: int | None = None
    train_subset: int | None = None
    subset_seed: int = 0
    classes: list[int] | None = None
    augment: list[str] | str = field(default_factory=list)
    crop_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    color_jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.1])


def to_model_input(
    images: torch.Tensor,
    *,
    size: int | None,
    device: torch.device,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` images -> float in [0, 1] on ``device``, resized to ``size``.

    The conversion runs per batch on the target device (a uint8 copy is a
    quarter of a float one). Downsampling uses antialiasing, as
    ``torchvision.transforms.Resize`` does on tensors.
    """
    X = images.to(device, non_blocking=True).float().div_(255)
    if size is not None and tuple(X.shape[-2:]) != (size, size):
        X = F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < X.shape[-1])  # fmt: skip
    if channels_last:
        X = X.contiguous(memory_format=torch.channels_last)
    return X


def select_classes(data: ImageClassificationData, classes: list[int] | None) -> ImageClassificationData:
    """``data`` restricted to ``classes``, relabelled 0, 1, ... in the order given (all of it for ``None``)."""
    if classes is None:
        return data
    n = len(data.class_names)
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(0 <= c < n for c in classes):
        raise ConfigError(f"classes must be two or more distinct class indices in 0..{n - 1}, got {classes}")
    new_label = torch.full((n,), -1, dtype=torch.long)
    new_label[torch.tensor(classes)] = torch.arange(len(classes))

    def keep(split: ImageSplit) -> ImageSplit:
        labels = new_label[split.labels.long()]
        mask = labels >= 0
        return ImageSplit(split.images[mask], labels[mask])

    return dataclasses.replace(data, train=keep(data.train), test=keep(data.test),
                               class_names=tuple(data.class_names[c] for c in classes))  # fmt: skip


def _subset(split: ImageSplit, size: int | None, *, seed: int) -> ImageSplit:
    """``size`` examples of ``split`` drawn at random (kept in their original order), or all of it."""
    if size is None:
        return split
    if not 1 <= size <= len(split):
        raise ConfigError(f"train_subset must be between 1 and the {len(split):,} training images, got {size}")
    keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:size].sort().values
    return ImageSplit(split.images[keep], split.labels[keep])


class ImageClassificationTask(Task):
    """Train a classifier on in-memory images; report loss and accuracy."""

    kind = "image-classification"
    families = ("classifier",)
    monitor = "test_acc"
    monitor_mode = "max"

    def __init__(self, data: ImageClassificationData, config: ImageTaskConfig, *,
                 batch_size: int, eval_batch_size: int, model_entry: ModelEntry) -> None:  # fmt: skip
        self.data = select_classes(data, config.classes)
        self.config = config
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        native = self.data.image_size[0]
        model_size = model_entry.input_size[-1] if model_entry.input_size else None
        self.size = config.resize or model_size or native
        if self.size < 1:
            raise ConfigError(f"resize must be a positive side length, got {self.size}")
        self.train_split = _subset(self.data.train, config.train_subset, seed=config.subset_seed)
        names = parse_augment(config.augment)
        self.augment = BatchAugment(names, size=self.size, crop_scale=config.crop_scale,
                                    jitter=config.color_jitter) if names else None  # fmt: skip

    def model_options(self) -> dict[str, Any]:
        return {"num_classes": self.data.num_classes, "in_channels": self.data.in_channels, "image_size": self.size}

    def _input(self, images: torch.Tensor, augment_seed: int | None = None) -> torch.Tensor:
        rt = self.runtime
        if self.augment is None or augment_seed is None:
            return to_model_input(images, size=self.size, device=rt.device, channels_last=rt.channels_last)
        X = to_model_input(images, size=None, device=rt.device)  # float in [0, 1], native size
        X = self.augment(X, generator=torch.Generator().manual_seed(augment_seed))  # (N, C, size, size)
        return X.contiguous(memory_format=torch.channels_last) if rt.channels_last else X

    def train_batches(self, *, seed: int) -> TensorBatches | SeededBatches:
        split, rt = self.train_split, self.runtime
        batches = TensorBatches((split.images, split.labels), batch_size=self.batch_size, shuffle=True,
                                seed=seed, rank=rt.rank, world_size=rt.world_size)  # fmt: skip
        # With augmentation each batch carries its seed, so its random crops are replayable.
        return SeededBatches(batches, seed=seed, rank=rt.rank) if self.augment else batches

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        images, labels, *augment_seed = batch
        y = labels.to(self.runtime.device, non_blocking=True)
        logits = model(self._input(images, *augment_seed))
        loss = F.cross_entropy(logits, y)
        with torch.no_grad():
            correct = (logits.argmax(dim=1) == y).sum()
        return StepOutput(loss, {"loss": loss.detach() * y.numel(), "correct": correct, "count": y.numel()})

    @torch.no_grad()
    def eval_sums(self, model: nn.Module) -> dict[str, float]:
        split, rt = self.data.test, self.runtime
        batches = TensorBatches((split.images, split.labels), batch_size=self.eval_batch_size,
                                rank=rt.rank, world_size=rt.world_size)  # fmt: skip
        loss = correct = count = 0.0
        for images, labels in batches:
            y = labels.to(rt.device, non_blocking=True)
            logits = model(self._input(images)).float()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += y.numel()
        return {"loss": loss, "correct": correct, "count": count}

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        count = max(float(sums["count"]), 1.0)
        return {f"{prefix}_loss": float(sums["loss"]) / count, f"{prefix}_acc": float(sums["correct"]) / count}

    def info(self) -> dict[str, Any]:
        return {**self.data.info(), "input_size": [self.data.in_channels, self.size, self.size],
                "model_options": self.model_options(), "augment": self.augment.names if self.augment else []}  # fmt: skip


@register_task("image-classification", ImageTaskConfig)
def build_image_classification(data: ImageClassificationData, config: ImageTaskConfig, **kwargs: Any) -> Task:
    return ImageClassificationTask(data, config, **kwargs)
