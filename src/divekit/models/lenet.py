"""LeNet-5 (notes §2.3), as the book trains it on 28x28 images."""

from __future__ import annotations

from torch import nn

from divekit.models.registry import register_model


@register_model(
    "lenet",
    family="classifier",
    input_size=(1, 28, 28),
    # The book's Fashion-MNIST settings (§6.6 of d2l): SGD, lr 0.9, batch 256, 10 epochs, Xavier.
    recipe={"optim.optimizer": "sgd", "optim.lr": 0.9, "data.batch_size": 256, "train.epochs": 10,
            "model.init": "xavier"},
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
