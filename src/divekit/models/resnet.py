"""ResNet (notes §2.7 ResNet): residual blocks, in the book's and in torchvision's layout.

He, Zhang, Ren & Sun, 2016, "Deep Residual Learning for Image Recognition".
A residual block learns ``f(x)`` and outputs ``relu(f(x) + x)``, so a deeper
network can always fall back to the shallower one (``f = 0``). When the
block changes the shape (a stride, or more channels), the shortcut passes
``x`` through a 1x1 convolution with the same stride.

Two layouts of the same network, as data (:data:`RESNET_LAYOUTS`):

- ``book``: the book's blocks (d2l §8.6): convolutions with biases, a bare
  1x1 convolution on the shortcut; trained on 96x96 Fashion-MNIST.
- ``imagenet``: torchvision's ``resnet18``: convolutions without biases
  (batch norm follows each), batch norm on the shortcut. Its parameter names
  and shapes are torchvision's, so a torchvision ``state_dict`` loads as is;
  with 3 channels and 1,000 classes it has 11,689,512 parameters.

Both share the stem (7x7/2 convolution, batch norm, ReLU, 3x3/2 max-pool),
four stages of residual blocks, global average pooling and a linear head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from divekit.models.registry import register_model
from divekit.models.common import book_recipe, digits_recipe


@dataclass(frozen=True)
class ResNetLayout:
    """Where the two layouts differ."""

    conv_bias: bool  # biases in the convolutions (the book) or not (torchvision)
    shortcut_norm: bool  # batch norm after the 1x1 shortcut convolution


RESNET_LAYOUTS = {
    "book": ResNetLayout(conv_bias=True, shortcut_norm=False),
    "imagenet": ResNetLayout(conv_bias=False, shortcut_norm=True),
}
# Residual blocks per stage.
RESNET_DEPTHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
STAGE_CHANNELS = (64, 128, 256, 512)


class Residual(nn.Module):
    """A basic residual block: two 3x3 convolutions with batch norm, plus the shortcut.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; the first
    convolution carries the stride.

    Args:
        in_channels: channels of ``x``.
        out_channels: channels of the output.
        use_1x1conv: pass the shortcut through a 1x1 convolution (needed when
            the shape changes).
        stride: stride of the first convolution and of the shortcut.
        layout: the book's or torchvision's block (see :data:`RESNET_LAYOUTS`).
    """

    def __init__(self, in_channels: int, out_channels: int, *, use_1x1conv: bool = False, stride: int = 1,
                 layout: ResNetLayout = RESNET_LAYOUTS["book"]) -> None:  # fmt: skip
        super().__init__()
        bias = layout.conv_bias
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if use_1x1conv:
            shortcut = [nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)]
            if layout.shortcut_norm:
                shortcut.append(nn.BatchNorm2d(out_channels))
            self.downsample = nn.Sequential(*shortcut)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = self.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        shortcut = X if self.downsample is None else self.downsample(X)
        return self.relu(Y + shortcut)


def resnet_stage(in_channels: int, out_channels: int, num_residuals: int, *, first_stage: bool,
                 layout: ResNetLayout) -> nn.Sequential:  # fmt: skip
    """``num_residuals`` blocks; all but the first stage halve the image and double the channels."""
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_stage:
            blocks.append(Residual(in_channels, out_channels, use_1x1conv=True, stride=2, layout=layout))
        else:
            blocks.append(Residual(out_channels, out_channels, layout=layout))
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    """A ResNet classifier; children are named as torchvision names them.

    ``forward_features`` runs the stem and the stages; ``forward_head`` pools
    and classifies, so a fine-tuned model can reuse the features.

    Args:
        depths: residual blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        layout: ``"book"`` or ``"imagenet"``.
        in_channels: image channels.
        num_classes: outputs.
    """

    def __init__(self, depths: Sequence[int], *, layout: str = "book", in_channels: int = 1,
                 num_classes: int = 10) -> None:  # fmt: skip
        super().__init__()
        if layout not in RESNET_LAYOUTS:
            raise ValueError(f"unknown ResNet layout {layout!r}; use one of {', '.join(RESNET_LAYOUTS)}")
        spec = RESNET_LAYOUTS[layout]
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=spec.conv_bias)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        for index, (depth, out_channels) in enumerate(zip(depths, STAGE_CHANNELS), start=1):
            stage = resnet_stage(channels, out_channels, depth, first_stage=index == 1, layout=spec)
            self.add_module(f"layer{index}", stage)
            channels = out_channels
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        self.num_stages = len(depths)

    def forward_features(self, X: torch.Tensor) -> torch.Tensor:
        X = self.maxpool(self.relu(self.bn1(self.conv1(X))))  # (N, 64, H/4, W/4)
        for index in range(1, self.num_stages + 1):
            X = getattr(self, f"layer{index}")(X)
        return X  # (N, 512, H/32, W/32)

    def forward_head(self, X: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.avgpool(X)))  # (N, 512, 1, 1) -> (N, 512) -> (N, classes)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(X))


# The book trains ResNet-18 at 96x96, lr 0.05, batch 256 (d2l §8.6).
@register_model("resnet18", task="classification", input_size=(1, 96, 96), recipe=book_recipe(lr=0.05, batch_size=256),
                data_recipes=digits_recipe(resize=32, epochs=10))  # fmt: skip
def resnet18(*, in_channels: int = 1, num_classes: int = 10) -> ResNet:
    """ResNet-18 in the book's layout (conv biases, plain 1x1 shortcut), for small images."""
    return ResNet(RESNET_DEPTHS["resnet18"], layout="book", in_channels=in_channels, num_classes=num_classes)


@register_model("resnet18-imagenet", task="classification", input_size=(3, 224, 224),
                data_recipes=digits_recipe(resize=32, epochs=10))
def resnet18_imagenet(*, in_channels: int = 3, num_classes: int = 1000) -> ResNet:
    """ResNet-18 exactly as torchvision builds it (loads torchvision state_dicts)."""
    return ResNet(RESNET_DEPTHS["resnet18"], layout="imagenet", in_channels=in_channels, num_classes=num_classes)
