"""Registrations of the image data sets."""

from __future__ import annotations

from divekit.data import digits, mnist
from divekit.data.images import ImageClassificationData
from divekit.data.registry import register_dataset


@register_dataset(
    "digits",
    task="classification",
    description="scikit-learn's 1,797 8x8 digits upsampled to 28x28 (embedded, offline default)",
    embedded=True,
    # 1,437 training images give few steps per epoch: smaller batches, Adam and more epochs.
    recipe={"optim.optimizer": "adam", "optim.lr": 0.01, "data.batch_size": 32, "train.epochs": 20},
)
def _digits(**_: object) -> ImageClassificationData:
    return digits.load_digits()


@register_dataset(
    "fashion-mnist",
    task="classification",
    description="Zalando's Fashion-MNIST, 60,000 + 10,000 28x28 clothing images (IDX files)",
)
def _fashion_mnist(*, data_dir=None, download=False, mirror=None) -> ImageClassificationData:
    return mnist.load_idx_dataset(mnist.FASHION_MNIST, data_dir=data_dir, download_missing=download, mirror=mirror)


@register_dataset(
    "mnist",
    task="classification",
    description="LeCun's MNIST handwritten digits, 60,000 + 10,000 28x28 images (IDX files)",
)
def _mnist(*, data_dir=None, download=False, mirror=None) -> ImageClassificationData:
    return mnist.load_idx_dataset(mnist.MNIST, data_dir=data_dir, download_missing=download, mirror=mirror)
