"""Image classification data for the trainer: class selection, subsets, a validation split, augmentation.

Images stay uint8 in memory; each batch is converted to float in [0, 1],
resized to the model's input and (in training) augmented on the training
device, a quarter of the bytes a float copy would move.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F

from divekit.data.augment import BatchAugment, SeededBatches, parse_augment
from divekit.data.batching import BatchSeed, EpochBatches
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.data.loader import TensorBatches
from divekit.data.sources.base import DataSource, carve_validation
from divekit.errors import ConfigError


@dataclass
class ImageOptions:
    """Options of the image-classification task (the run config's ``task.options``).

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
        skip_bad_images: ``image-folder``: train without the images that cannot be
            decoded (they are counted and listed in ``task.json``) instead of refusing.
        test_split: ``image-folder`` without a ``test/`` folder: the fraction of
            each class's images held out as the test split (seeded by ``data.split_seed``).
    """

    resize: int | None = None
    train_subset: int | None = None
    subset_seed: int = 0
    classes: list[int] | None = None
    augment: list[str] | str = field(default_factory=list)
    crop_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    color_jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.1])
    skip_bad_images: bool = False
    test_split: float = 0.2


def to_model_input(
    images: torch.Tensor,
    *,
    size: int | None,
    device: torch.device,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` images -> float in [0, 1] on ``device``, resized to ``size``.

    Downsampling uses antialiasing, as ``torchvision.transforms.Resize`` does on tensors.
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
        raise ConfigError(f"task.options.classes must be two or more distinct class indices in 0..{n - 1}, "
                          f"got {classes}")  # fmt: skip
    new_label = torch.full((n,), -1, dtype=torch.long)
    new_label[torch.tensor(classes)] = torch.arange(len(classes))

    def keep(split: ImageSplit) -> ImageSplit:
        labels = new_label[split.labels.long()]
        mask = labels >= 0
        return ImageSplit(split.images[mask], labels[mask])

    return dataclasses.replace(data, train=keep(data.train), test=keep(data.test),
                               class_names=tuple(data.class_names[c] for c in classes))  # fmt: skip


def take(split: ImageSplit, index: torch.Tensor) -> ImageSplit:
    return ImageSplit(split.images[index], split.labels[index])


def random_subset(split: ImageSplit, size: int | None, *, seed: int) -> ImageSplit:
    """``size`` examples of ``split`` drawn at random (kept in their original order), or all of it."""
    if size is None:
        return split
    if not 1 <= size <= len(split):
        raise ConfigError(f"task.options.train_subset must be between 1 and the {len(split):,} training images, "
                          f"got {size}")  # fmt: skip
    keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:size].sort().values
    return take(split, keep)


class ImageSource(DataSource):
    """In-memory images: training batches (optionally augmented), ``val`` carved from training, ``test``.

    Args:
        data: the loaded data set.
        options: the task's options.
        batch_size, eval_batch_size: examples per training / evaluation batch.
        val_split: fraction of the training images held out for validation (seeded by ``split_seed``).
        model_input_size: the model's own ``(C, H, W)``, whose side is the default ``resize``.
    """

    task = "classification"

    def __init__(self, data: ImageClassificationData, options: ImageOptions, *, batch_size: int,
                 eval_batch_size: int, val_split: float = 0.0, split_seed: int = 0,
                 model_input_size: tuple[int, ...] | None = None) -> None:  # fmt: skip
        self.data = select_classes(data, options.classes)
        self.options, self.batch_size, self.eval_batch_size = options, batch_size, eval_batch_size
        self.size = options.resize or (model_input_size[-1] if model_input_size else None) or self.data.image_size[0]
        if self.size < 1:
            raise ConfigError(f"task.options.resize must be a positive side length, got {self.size}")
        train_index, val_index = carve_validation(len(self.data.train), val_split, seed=split_seed, what="images")
        self.val = take(self.data.train, val_index)
        self.train = random_subset(take(self.data.train, train_index), options.train_subset, seed=options.subset_seed)
        names = parse_augment(options.augment)
        self.augment = BatchAugment(names, size=self.size, crop_scale=options.crop_scale,
                                    jitter=options.color_jitter) if names else None  # fmt: skip

    def train_batches(self, *, seed: int) -> EpochBatches:
        batches = TensorBatches((self.train.images, self.train.labels), batch_size=self.batch_size, shuffle=True,
                                seed=seed)  # fmt: skip
        # With augmentation each batch carries its seed, so its random crops are replayable.
        return SeededBatches(batches, seed=seed) if self.augment else batches

    def eval_batches(self) -> dict[str, Iterable[Any]]:
        splits = {"val": self.val, "test": self.data.test}
        return {name: TensorBatches((s.images, s.labels), batch_size=self.eval_batch_size)
                for name, s in splits.items() if len(s)}  # fmt: skip

    def transfer(self, batch: Any, *, device: torch.device, channels_last: bool, train: bool) -> Any:
        images, labels, *seed = batch
        y = labels.to(device, non_blocking=True)
        if not (train and self.augment and seed):
            return to_model_input(images, size=self.size, device=device, channels_last=channels_last), y
        batch_seed: BatchSeed = seed[0]
        X = to_model_input(images, size=None, device=device)  # float in [0, 1], native size
        generator = torch.Generator().manual_seed(batch_seed.seed)
        X = self.augment(X, generator=generator, total=batch_seed.total, rows=batch_seed.rows)  # (N, C, size, size)
        return (X.contiguous(memory_format=torch.channels_last) if channels_last else X), y

    def model_options(self) -> dict[str, Any]:
        return {"num_classes": self.data.num_classes, "in_channels": self.data.in_channels, "image_size": self.size}

    def info(self) -> dict[str, Any]:
        return {**self.data.info(), "input_size": [self.data.in_channels, self.size, self.size],
                "model_options": self.model_options(), "augment": self.augment.names if self.augment else [],
                "splits": {"train": len(self.train), "val": len(self.val), "test": len(self.data.test)}}  # fmt: skip
