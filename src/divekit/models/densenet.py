"""DenseNet (d2l §8.7): dense connections, beyond the notes.

Huang, Liu, van der Maaten & Weinberger, 2017, "Densely Connected
Convolutional Networks". Where a residual block adds its input to its output,
a dense block *concatenates* them: every convolution sees the outputs of all
the convolutions before it, and adds ``growth_rate`` channels. Transition
layers (1x1 convolution and 2x2 average pooling) halve the channels and the
image between dense blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from divekit.models.registry import register_model
from divekit.models.common import book_recipe, digits_recipe, flat_features


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Batch norm, ReLU, 3x3 convolution: the pre-activation unit of a dense block."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
    )


class DenseBlock(nn.Module):
    """``num_convs`` conv blocks, each fed the concatenation of the input and all earlier outputs.

    Args:
        num_convs: conv blocks in the dense block.
        in_channels: channels of the input.
        growth_rate: channels each conv block adds.
    """

    def __init__(self, num_convs: int, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*(conv_block(in_channels + i * growth_rate, growth_rate) for i in range(num_convs)))
        self.out_channels = in_channels + num_convs * growth_rate

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        for block in self.net:
            X = torch.cat((X, block(X)), dim=1)  # (N, C + growth_rate, H, W)
        return X


def transition_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Batch norm, ReLU, 1x1 convolution to ``out_channels``, 2x2 average pooling (halves H and W)."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels), nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2),
    )  # fmt: skip


@register_model(
    "densenet",
    task="classification",
    input_size=(1, 96, 96),
    # The book's Fashion-MNIST settings (d2l §8.7): resize 96, lr 0.1, batch 256, 10 epochs.
    recipe=book_recipe(lr=0.1, batch_size=256),
    data_recipes=digits_recipe(resize=32, epochs=10),
)
def densenet(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    image_size: int = 96,
    num_convs_in_dense_blocks: Sequence[int] = (4, 4, 4, 4),
    growth_rate: int = 32,
) -> nn.Module:
    """DenseNet: ResNet's stem, dense blocks joined by channel-halving transitions, pooling, linear.

    Args:
        in_channels: image channels.
        num_classes: outputs.
        image_size: side of the square input; only checked: each transition halves it.
        num_convs_in_dense_blocks: conv blocks in each dense block.
        growth_rate: channels each conv block adds.
    """
    def features() -> nn.Sequential:
        return densenet_features(in_channels, num_convs_in_dense_blocks, growth_rate)

    flat_features(features, (in_channels, image_size, image_size))  # refuses too small an image
    channels = features()[-1].num_features  # the final batch norm's width
    return nn.Sequential(
        *features(), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),  # (N, channels)
        nn.Linear(channels, num_classes),
    )  # fmt: skip


def densenet_features(in_channels: int, num_convs_in_dense_blocks: Sequence[int], growth_rate: int) -> nn.Sequential:
    """The stem, dense blocks joined by transitions that halve channels and image, a final batch norm."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ]  # fmt: skip
    channels = 64
    for index, num_convs in enumerate(num_convs_in_dense_blocks):
        block = DenseBlock(num_convs, channels, growth_rate)
        layers.append(block)
        channels = block.out_channels
        if index != len(num_convs_in_dense_blocks) - 1:
            layers.append(transition_block(channels, channels // 2))
            channels //= 2
    layers.append(nn.BatchNorm2d(channels))
    return nn.Sequential(*layers)
