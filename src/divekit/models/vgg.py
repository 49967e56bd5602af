"""VGG (notes §2.5): networks made of repeated blocks.

Simonyan & Zisserman, 2014, "Very Deep Convolutional Networks for
Large-Scale Image Recognition". A VGG block is ``num_convs`` 3x3 convolutions
with ReLU, then a 2x2 max-pool that halves height and width. A network is a
``conv_arch`` table of ``(num_convs, out_channels)`` pairs, one per block,
followed by a 4096-4096 dropout MLP: the variants below are data.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from torch import nn

from divekit.models.registry import register_model
from divekit.models.common import book_recipe, digits_recipe, flat_features

ConvArch = Sequence[tuple[int, int]]

# (num_convs, out_channels) per block; VGG-11 is configuration "A" of the paper.
VGG_ARCHS: dict[str, ConvArch] = {
    "vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "vgg13": ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    "vgg16": ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}
# The book trains VGG-11 with every block's channels divided by 4 on Fashion-MNIST.
NARROW_RATIO = 4


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` 3x3 convolutions (padding 1) with ReLU, then 2x2 max pooling (stride 2)."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg_features(conv_arch: ConvArch, in_channels: int = 1) -> nn.Sequential:
    """One :func:`vgg_block` per ``(num_convs, out_channels)`` row of ``conv_arch``."""
    blocks = []
    for num_convs, out_channels in conv_arch:
        blocks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    return nn.Sequential(*blocks)


def narrow(conv_arch: ConvArch, ratio: int = NARROW_RATIO) -> tuple[tuple[int, int], ...]:
    """``conv_arch`` with every block's channels divided by ``ratio`` (the book's small VGG)."""
    return tuple((num_convs, channels // ratio) for num_convs, channels in conv_arch)


def vgg(
    conv_arch: ConvArch,
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    image_size: int = 224,
    dropout: float = 0.5,
) -> nn.Sequential:
    """A VGG network: the blocks of ``conv_arch``, flatten, then 4096-4096-``num_classes``.

    Each block halves the image, so the side must be at least ``2 ** len(conv_arch)``.

    Args:
        conv_arch: ``(num_convs, out_channels)`` per block.
        in_channels: image channels.
        num_classes: outputs.
        image_size: side of the square input.
        dropout: drop probability of the two hidden linear layers.
    """
    flat = flat_features(functools.partial(vgg_features, conv_arch, in_channels), (in_channels, image_size, image_size))
    return nn.Sequential(
        *vgg_features(conv_arch, in_channels), nn.Flatten(),
        nn.Linear(flat, 4096), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    )  # fmt: skip


# The book's Fashion-MNIST settings for VGG (d2l §8.2): resize 224, lr 0.05, batch 128, 10 epochs.
_VGG_RECIPE = book_recipe(lr=0.05, batch_size=128)
# The other rows of VGG_ARCHS are one call away: vgg(VGG_ARCHS["vgg16"]).
@register_model("vgg11", task="classification", input_size=(1, 224, 224), recipe=_VGG_RECIPE,
                data_recipes=digits_recipe(resize=32, lr=0.0001, epochs=10))  # fmt: skip
def vgg11(*, in_channels: int = 1, num_classes: int = 10, image_size: int = 224, dropout: float = 0.5) -> nn.Sequential:
    """VGG-11: five VGG blocks (8 convolutions), then a 4096-4096 dropout MLP."""
    return vgg(VGG_ARCHS["vgg11"], in_channels=in_channels, num_classes=num_classes, image_size=image_size,
               dropout=dropout)  # fmt: skip


@register_model("vgg11-narrow", task="classification", input_size=(1, 224, 224), recipe=_VGG_RECIPE,
                data_recipes=digits_recipe(resize=32, lr=0.001, epochs=10))  # fmt: skip
def vgg11_narrow(*, in_channels: int = 1, num_classes: int = 10, image_size: int = 224,
                 dropout: float = 0.5) -> nn.Sequential:  # fmt: skip
    """VGG-11/4: VGG-11 with a quarter of the channels, as the book trains it."""
    return vgg(narrow(VGG_ARCHS["vgg11"]), in_channels=in_channels, num_classes=num_classes, image_size=image_size,
               dropout=dropout)  # fmt: skip
