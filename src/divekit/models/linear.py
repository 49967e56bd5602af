"""Linear and multilayer-perceptron classifiers: the simplest baselines."""

from __future__ import annotations

from torch import nn

from divekit.models.registry import register_model


@register_model(
    "softmax",
    task="classification",
    input_size=(1, 28, 28),
    recipe={"optim.optimizer": "sgd", "optim.lr": 0.1, "data.batch_size": 256, "train.epochs": 10},
)
def softmax(*, in_channels: int = 1, image_size: int = 28, num_classes: int = 10) -> nn.Module:
    """Softmax regression: flatten the image, one linear layer to the class logits."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size * image_size, num_classes))


@register_model(
    "mlp",
    task="classification",
    input_size=(1, 28, 28),
    recipe={"optim.optimizer": "sgd", "optim.lr": 0.1, "data.batch_size": 256, "train.epochs": 10},
)
def mlp(
    *,
    in_channels: int = 1,
    image_size: int = 28,
    num_classes: int = 10,
    num_hiddens: int = 256,
    dropout: float = 0.0,
) -> nn.Module:
    """Multilayer perceptron: one ReLU hidden layer (256 units) between flatten and logits."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * image_size * image_size, num_hiddens),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(num_hiddens, num_classes),
    )
