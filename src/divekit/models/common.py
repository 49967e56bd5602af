"""Helpers shared by the CNN families: shape inference and the book's training recipe."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def flat_features(make_features: Callable[[], nn.Module], input_size: tuple[int, int, int]) -> int:
    """How many numbers ``make_features()`` outputs for one ``(C, H, W)`` image.

    The feature extractor is built a second time on PyTorch's ``meta``
    device, which tracks shapes without allocating or computing anything, so
    this costs microseconds even for a 224x224 input.

    Raises:
        ValueError: the image is too small for the network (a stage would
            produce an empty feature map).
    """
    with torch.device("meta"):
        features = make_features().eval()  # eval: batch norm accepts a batch of one
        try:
            out = features(torch.empty(1, *input_size))
        except RuntimeError as err:
            raise ValueError(f"an input of size {input_size} is too small for this network ({err})") from err
    if out.numel() == 0:
        raise ValueError(f"an input of size {input_size} is too small for this network (empty feature map)")
    return out[0].numel()


def digits_recipe(*, resize: int | None = None, lr: float | None = None,
                  epochs: int | None = None) -> dict[str, dict[str, object]]:  # fmt: skip
    """How a network learns on the embedded digits (``data_recipes`` of its registration).

    The digits are 8x8 scans upsampled to 28x28: a larger input adds cost and
    no information, so each network reads the smallest size near what it
    accepts (``resize``); ``lr`` replaces the digits' Adam rate of 0.01 where
    that diverges or stalls, ``epochs`` their 20 passes where fewer suffice.
    """
    settings = {"task.options.resize": resize, "optim.lr": lr, "train.epochs": epochs}
    return {"digits": {key: value for key, value in settings.items() if value is not None}}


def book_recipe(*, lr: float, batch_size: int, epochs: int = 10) -> dict[str, object]:
    """How the book trains its CNNs on Fashion-MNIST: plain SGD, Xavier initialisation, 10 epochs."""
    return {"optim.optimizer": "sgd", "optim.lr": lr, "data.batch_size": batch_size, "train.epochs": epochs,
            "model.init": "xavier"}  # fmt: skip
