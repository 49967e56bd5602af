"""GoogLeNet (d2l §8.4): networks of Inception blocks, beyond the notes.

Szegedy et al., 2015, "Going Deeper with Convolutions". An Inception block
runs four paths side by side and concatenates their channels: a 1x1
convolution; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pooling then 1x1. The
1x1 convolutions in front keep the wide kernels cheap. The network is a stem
and three stages of Inception blocks, written below as a table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from divekit.models.registry import register_model
from divekit.models.common import book_recipe, digits_recipe

# Output channels of the four paths: c1, (c2 reduce, c2), (c3 reduce, c3), c4.
InceptionSpec = tuple[int, tuple[int, int], tuple[int, int], int]

# Stages 3, 4 and 5 of the book's GoogLeNet; a 3x3/2 max-pool follows stages 3 and 4.
INCEPTION_STAGES: tuple[tuple[InceptionSpec, ...], ...] = (
    ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    ((192, (96, 208), (16, 48), 64), (160, (112, 224), (24, 64), 64), (128, (128, 256), (24, 64), 64),
     (112, (144, 288), (32, 64), 64), (256, (160, 320), (32, 128), 128)),
    ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
)  # fmt: skip


class Inception(nn.Module):
    """Four parallel paths whose outputs are concatenated along the channels.

    Args:
        in_channels: channels of the input.
        c1: channels of the 1x1 path.
        c2: (1x1 reduction, 3x3 output) channels.
        c3: (1x1 reduction, 5x5 output) channels.
        c4: channels of the pooling path's 1x1 convolution.
    """

    def __init__(self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)
        self.relu = nn.ReLU()
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        p1 = self.relu(self.p1_1(X))
        p2 = self.relu(self.p2_2(self.relu(self.p2_1(X))))
        p3 = self.relu(self.p3_2(self.relu(self.p3_1(X))))
        p4 = self.relu(self.p4_2(self.p4_1(X)))
        return torch.cat((p1, p2, p3, p4), dim=1)  # (N, c1 + c2 + c3 + c4, H, W)


def inception_stage(in_channels: int, specs: Sequence[InceptionSpec]) -> tuple[nn.Sequential, int]:
    """One Inception block per spec; returns the stage and its output channels."""
    blocks = []
    for spec in specs:
        blocks.append(Inception(in_channels, *spec))
        in_channels = blocks[-1].out_channels
    return nn.Sequential(*blocks), in_channels


@register_model(
    "googlenet",
    task="classification",
    input_size=(1, 96, 96),
    # The book's Fashion-MNIST settings (d2l §8.4): resize 96, lr 0.1, batch 128, 10 epochs.
    recipe=book_recipe(lr=0.1, batch_size=128),
    data_recipes=digits_recipe(resize=32, lr=0.001),  # slow to start: the digits' 20 epochs
)
def googlenet(*, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """GoogLeNet: a two-stage stem, nine Inception blocks in three stages, global average pooling, linear.

    Args:
        in_channels: image channels.
        num_classes: outputs.
    """
    pool = lambda: nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # noqa: E731
    stem = [
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(), pool(),
        nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(),
        nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(), pool(),
    ]  # fmt: skip
    channels, stages = 192, []
    for index, specs in enumerate(INCEPTION_STAGES):
        stage, channels = inception_stage(channels, specs)
        stages.append(nn.Sequential(*stage, pool()) if index < len(INCEPTION_STAGES) - 1 else stage)
    return nn.Sequential(
        nn.Sequential(*stem), *stages,
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),  # (N, 1024)
        nn.Linear(channels, num_classes),
    )  # fmt: skip
