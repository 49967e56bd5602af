"""Attention pooling before deep learning (notes §6.11.2-6.11.3): Nadaraya-Watson kernel regression.

Given training pairs ``(x_i, y_i)``, the prediction at a query ``x`` is a
weighted average of the ``y_i``, weighted by how close ``x_i`` is to ``x``:

    f(x) = sum_i softmax_i(-((x - x_i) * w)^2 / 2) * y_i

With a Gaussian kernel and ``w = 1`` this has no parameter at all
(non-parametric attention pooling, §6.11.2); making ``w`` learnable narrows
or widens the kernel (parametric attention pooling, §6.11.3). The query is
the *volitional cue*, the ``x_i`` are keys and the ``y_i`` values.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def nadaraya_watson(
    queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, *, w: float | torch.Tensor = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian-kernel regression: predictions ``(Q,)`` and attention weights ``(Q, K)``.

    Args:
        queries: ``(Q,)`` points to predict at.
        keys: ``(K,)`` training inputs shared by all queries, or ``(Q, K)`` per query.
        values: the matching training outputs, ``(K,)`` or ``(Q, K)``.
        w: the kernel's inverse width.
    """
    distances = queries.unsqueeze(1) - keys  # (Q, K): every query against every key
    weights = F.softmax(-((distances * w) ** 2) / 2, dim=1)
    pooled = (weights * values).sum(dim=1) if values.dim() == 2 else weights @ values
    return pooled, weights


class NWKernelRegression(nn.Module):
    """Nadaraya-Watson regression with a learnable kernel width ``w`` (notes §6.11.3).

    ``forward(queries (Q,), keys (Q, K), values (Q, K))`` -> predictions ``(Q,)``;
    the last weights stay in ``attention_weights`` for plotting.
    """

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.rand(1))
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        predictions, weights = nadaraya_watson(queries, keys, values, w=self.w)
        self.attention_weights = weights.detach()
        return predictions
