"""AlexNet (notes §2.4), as the book adapts it to Fashion-MNIST.

Krizhevsky, Sutskever & Hinton, 2012, "ImageNet Classification with Deep
Convolutional Neural Networks": a deeper, wider LeNet with ReLU, max pooling,
dropout and data augmentation. The book's version is a single-GPU network
on one-channel 224x224 inputs, with 10 outputs.
"""

from __future__ import annotations

import functools

from torch import nn

from divekit.models.registry import register_model
from divekit.models.common import book_recipe, digits_recipe, flat_features


def alexnet_features(in_channels: int = 1) -> nn.Sequential:
    """The five convolutions and three max-pools; 224x224 in gives 256@5x5 out."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),  # 96@54x54
        nn.MaxPool2d(kernel_size=3, stride=2),  # 96@26x26
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),  # 256@26x26
        nn.MaxPool2d(kernel_size=3, stride=2),  # 256@12x12
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),  # 256@12x12
        nn.MaxPool2d(kernel_size=3, stride=2),  # 256@5x5
    )  # fmt: skip


@register_model(
    "alexnet",
    task="classification",
    input_size=(1, 224, 224),
    # The book's Fashion-MNIST settings (d2l §8.1): resize 224, lr 0.01, batch 128, 10 epochs.
    recipe=book_recipe(lr=0.01, batch_size=128),
    data_recipes=digits_recipe(resize=96, lr=0.001, epochs=10),
)
def alexnet(*, in_channels: int = 1, num_classes: int = 10, image_size: int = 224, dropout: float = 0.5) -> nn.Module:
    """AlexNet: 5 conv layers (11x11/4, 5x5, 3x 3x3) with max pooling, then 4096-4096 dropout MLP.

    46,764,746 parameters for one channel, 224x224 and 10 classes. Other
    input sizes resize the first linear layer (at least 67x67).

    Args:
        in_channels: image channels.
        num_classes: outputs.
        image_size: side of the square input.
        dropout: drop probability of the two hidden linear layers.
    """
    flat = flat_features(functools.partial(alexnet_features, in_channels), (in_channels, image_size, image_size))
    return nn.Sequential(
        *alexnet_features(in_channels),
        nn.Flatten(),
        nn.Linear(flat, 4096), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    )  # fmt: skip
