"""``digits``: the embedded default data set, scikit-learn's 8x8 handwritten digits.

1,797 images ship with scikit-learn, so it works offline. Pixel values 0-16
are scaled to 0-255 and upsampled to 28x28 (bilinear) so the models built for
MNIST run on it unchanged. The split is fixed: every fifth image (index
0, 5, 10, ...) is a test image, the rest train (1,437 train, 360 test).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.data.mnist import DIGIT_CLASSES
from divekit.errors import DataError

IMAGE_SIZE = 28
TEST_EVERY = 5


def _digits_table() -> np.ndarray:
    """scikit-learn's ``digits.csv.gz`` (64 pixels then the label per row), read without importing scikit-learn.

    Importing scikit-learn takes over a second; the file it ships is all we need.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded digits data set comes with scikit-learn: pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():  # a layout we do not know: let scikit-learn find it
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        return np.column_stack([bunch.data, bunch.target])
    return np.loadtxt(path, delimiter=",", dtype=np.float32)


def load_digits(*, image_size: int = IMAGE_SIZE) -> ImageClassificationData:
    """The digits data set as uint8 tensors of shape ``(N, 1, image_size, image_size)``."""
    table = torch.from_numpy(_digits_table())
    images = table[:, :64].reshape(-1, 1, 8, 8) / 16.0  # (N, 1, 8, 8) in [0, 1]
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    labels = table[:, 64].to(torch.int64)
    is_test = torch.arange(len(labels)) % TEST_EVERY == 0
    return ImageClassificationData(
        "digits",
        train=ImageSplit(images[~is_test], labels[~is_test]),
        test=ImageSplit(images[is_test], labels[is_test]),
        class_names=DIGIT_CLASSES,
    )
