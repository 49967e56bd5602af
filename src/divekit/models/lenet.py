"""LeNet-5 (notes §2.3) and LeNet with batch normalisation (§2.6), as the book trains them on 28x28 images."""

from __future__ import annotations

from torch import nn

from divekit.models.registry import register_model
from divekit.models.common import book_recipe, digits_recipe
from divekit.nn.norm import BatchNorm


@register_model(
    "lenet",
    task="classification",
    input_size=(1, 28, 28),
    # The book's Fashion-MNIST settings (§6.6 of d2l): SGD, lr 0.9, batch 256, 10 epochs, Xavier.
    recipe={"optim.optimizer": "sgd", "optim.lr": 0.9, "data.batch_size": 256, "train.epochs": 10,
            "model.init": "xavier"},
    data_recipes=digits_recipe(lr=0.001),  # sigmoid layers stall at Adam's 0.01
)
def lenet(*, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """LeNet-5: two 5x5 conv + sigmoid + 2x2 average-pool stages, then a 120-84 sigmoid head.

    The first convolution pads by 2, so a 28x28 input gives the 28x28 feature
    map that the original network got from a 32x32 image:
    28x28 -> conv 6@28x28 -> pool 6@14x14 -> conv 16@10x10 -> pool 16@5x5
    -> 400 -> 120 -> 84 -> num_classes.
    (LeCun et al., 1998, "Gradient-based learning applied to document recognition".)
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, num_classes),
    )  # fmt: skip


def _batch_norm(kind: str, num_features: int, num_dims: int) -> nn.Module:
    if kind == "scratch":
        return BatchNorm(num_features, num_dims)
    if kind == "torch":
        return (nn.BatchNorm2d if num_dims == 4 else nn.BatchNorm1d)(num_features)
    raise ValueError(f"unknown batch-norm kind {kind!r}; use 'scratch' or 'torch'")


def lenet_with_batch_norm(*, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                          norm: str = "scratch") -> nn.Module:  # fmt: skip
    """LeNet with batch normalisation after every convolution and hidden linear layer (notes §2.6.2).

    As the book builds it: no padding, so a 28x28 input gives
    conv 6@24x24 -> pool 6@12x12 -> conv 16@8x8 -> pool 16@4x4 -> 256 -> 120 -> 84 -> classes,
    each conv/linear layer followed by batch norm, then sigmoid.

    Args:
        in_channels: image channels.
        num_classes: outputs.
        image_size: side of the square input (sizes the first linear layer).
        norm: ``"scratch"`` (:class:`divekit.nn.BatchNorm`) or ``"torch"`` (``nn.BatchNorm1d/2d``).
    """
    side = ((image_size - 4) // 2 - 4) // 2
    if side < 1:
        raise ValueError(f"LeNet-BN needs images of at least 12x12, got {image_size}x{image_size}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5), _batch_norm(norm, 6, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), _batch_norm(norm, 16, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * side * side, 120), _batch_norm(norm, 120, 2), nn.Sigmoid(),
        nn.Linear(120, 84), _batch_norm(norm, 84, 2), nn.Sigmoid(),
        nn.Linear(84, num_classes),
    )  # fmt: skip


# LeNet-BN's two variants differ only in the normalisation layer: the from-scratch BatchNorm of
# divekit.nn or PyTorch's own. Both name their parameters and buffers alike, so their state_dicts
# are interchangeable. The book's BN settings (d2l §8.5): lr 1.0, batch 256, 10 epochs, Xavier init.
@register_model("lenet-bn", task="classification", input_size=(1, 28, 28), recipe=book_recipe(lr=1.0, batch_size=256))
def lenet_bn(*, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """LeNet with batch norm (from-scratch BatchNorm)."""
    return lenet_with_batch_norm(in_channels=in_channels, num_classes=num_classes, image_size=image_size, norm="scratch")


@register_model("lenet-bn-torch", task="classification", input_size=(1, 28, 28),
                recipe=book_recipe(lr=1.0, batch_size=256))  # fmt: skip
def lenet_bn_torch(*, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Module:
    """LeNet with batch norm (nn.BatchNorm1d/2d)."""
    return lenet_with_batch_norm(in_channels=in_channels, num_classes=num_classes, image_size=image_size, norm="torch")
