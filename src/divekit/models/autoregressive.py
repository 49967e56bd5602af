"""Autoregressive regression on a series (notes §6.1 序列模型).

Under a Markov assumption of order ``tau``, the next value depends only on
the last ``tau`` values, so predicting it is ordinary regression: features
``(N, tau)`` -> prediction ``(N, 1)`` (the ``regression`` family contract).
"""

from __future__ import annotations

from torch import nn

from divekit.models.registry import register_model


@register_model(
    "ar-mlp",
    task="regression",
    # as the book trains it on the noisy sine: Adam lr 0.01, batch 16, 5 epochs, Xavier init
    recipe={"data.name": "sine", "optim.optimizer": "adam", "optim.lr": 0.01, "data.batch_size": 16,
            "train.epochs": 5, "model.init": "xavier"},  # fmt: skip
)
def ar_mlp(*, in_features: int = 4, num_hiddens: int = 10) -> nn.Module:
    """Autoregressive MLP: the last `tau` values -> one hidden ReLU layer (10 units) -> the next value."""
    if in_features < 1 or num_hiddens < 1:
        raise ValueError(f"in_features and num_hiddens must be at least 1, got {in_features} and {num_hiddens}")
    return nn.Sequential(nn.Linear(in_features, num_hiddens), nn.ReLU(), nn.Linear(num_hiddens, 1))
