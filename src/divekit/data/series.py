"""Time series for autoregressive regression; the noisy sine of notes §6.1 序列模型 (embedded, generated).

``x_t = sin(0.01 t) + eps_t`` with ``eps_t ~ N(0, 0.2^2)`` for ``t = 1..1000``,
drawn from a fixed seed so every run sees the same series. The first 600
examples train an autoregressive model; the rest test it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from divekit.data.registry import register_dataset

SINE_SEED = 20_240_601


@dataclass
class SeriesData:
    """A univariate time series for regression on its own past (task ``regression``).

    Attributes:
        name: the data set's name.
        time: the time index ``(T,)``.
        values: the observations ``(T,)``, float32.
        n_train: how many leading examples (windows) train the model.
    """

    name: str
    time: torch.Tensor
    values: torch.Tensor
    n_train: int
    task: str = "regression"

    def info(self) -> dict[str, Any]:
        return {"task": self.task, "data": self.name, "length": len(self.values), "n_train": self.n_train}


def make_sine(*, length: int = 1000, noise: float = 0.2, seed: int = SINE_SEED, n_train: int = 600) -> SeriesData:
    """``sin(0.01 t)`` plus Gaussian noise of standard deviation ``noise``, for ``t = 1..length``."""
    time = torch.arange(1, length + 1, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    values = torch.sin(0.01 * time) + noise * torch.randn(length, generator=generator)
    return SeriesData("sine", time, values, n_train)


@register_dataset(
    "sine",
    task="regression",
    description="1,000 points of sin(0.01 t) plus N(0, 0.2^2) noise; the first 600 train (embedded)",
    embedded=True,
)
def _sine(**_: object) -> SeriesData:
    return make_sine()
