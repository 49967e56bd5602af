"""Network in Network (notes §2.5 NiN).

Lin, Chen & Yan, 2013, "Network In Network". A NiN block is one ordinary
convolution followed by two 1x1 convolutions, each with ReLU: the 1x1
convolutions act as a small fully connected network at every pixel. The
network has no fully connected layer at all: its last block outputs one
channel per class, and global average pooling turns each channel into a logit.
"""

from __future__ import annotations

from torch import nn

from divekit.models.registry import register_model
from divekit.models.common import book_recipe, digits_recipe, flat_features

# (out_channels, kernel_size, stride, padding) of each NiN block before the last;
# each is followed by a 3x3 max-pool with stride 2.
NIN_BLOCKS = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))


def nin_block(in_channels: int, out_channels: int, kernel_size: int, strides: int, padding: int) -> nn.Sequential:
    """A convolution, then two 1x1 convolutions, each followed by ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


def nin_features(in_channels: int = 1) -> nn.Sequential:
    """The NiN blocks of :data:`NIN_BLOCKS`, each followed by 3x3/2 max pooling."""
    layers: list[nn.Module] = []
    for out_channels, kernel_size, stride, padding in NIN_BLOCKS:
        layers += [nin_block(in_channels, out_channels, kernel_size, stride, padding),
                   nn.MaxPool2d(kernel_size=3, stride=2)]  # fmt: skip
        in_channels = out_channels
    return nn.Sequential(*layers)


@register_model(
    "nin",
    task="classification",
    input_size=(1, 224, 224),
    # The book's Fashion-MNIST settings (d2l §8.3): resize 224, lr 0.1, batch 128, 10 epochs.
    recipe=book_recipe(lr=0.1, batch_size=128),
    data_recipes=digits_recipe(resize=67, lr=0.001),  # its smallest input
)
def nin(*, in_channels: int = 1, num_classes: int = 10, image_size: int = 224, dropout: float = 0.5) -> nn.Module:
    """NiN: three NiN blocks with max pooling, dropout, a class-channel NiN block, global average pooling.

    No fully connected layer: any input of at least 67x67 works.

    Args:
        in_channels: image channels.
        num_classes: outputs (channels of the last NiN block).
        image_size: side of the square input; only checked against the minimum.
        dropout: drop probability before the last block.
    """
    flat_features(lambda: nin_features(in_channels), (in_channels, image_size, image_size))
    return nn.Sequential(
        *nin_features(in_channels),
        nn.Dropout(dropout),
        nin_block(NIN_BLOCKS[-1][0], num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),  # (N, classes, 1, 1)
        nn.Flatten(),  # (N, classes)
    )
