"""Batch normalisation from scratch (notes §2.6 批量归一化层).

During training, each feature (each channel of a convolution) is normalised
with the mean and variance of the current minibatch, then scaled and shifted
by the learnable ``gamma`` (``weight``) and ``beta`` (``bias``):

    Y = gamma * (X - mean_B) / sqrt(var_B + eps) + beta.

Running estimates of the mean and variance are kept on the side and used in
evaluation, when one example must not depend on the others of its batch.
(Ioffe & Szegedy, 2015, "Batch Normalization: Accelerating Deep Network
Training by Reducing Internal Covariate Shift".)

:class:`BatchNorm` is a drop-in twin of ``nn.BatchNorm1d``/``nn.BatchNorm2d``:
the same parameter and buffer names (``weight``, ``bias``, ``running_mean``,
``running_var``, ``num_batches_tracked``) and the same update rule, including
the *unbiased* batch variance in the running estimate (the normalisation
itself uses the biased one), so ``state_dict``s load across both ways.
"""

from __future__ import annotations

import torch
from torch import nn


def batch_norm(
    X: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    moving_mean: torch.Tensor,
    moving_var: torch.Tensor,
    *,
    eps: float = 1e-5,
    momentum: float = 0.1,
    training: bool = True,
) -> torch.Tensor:
    """Normalise ``X`` per feature (dimension 1) and update the running statistics in place.

    Args:
        X: ``(N, C)`` from a fully connected layer, or ``(N, C, ...)`` such as
            ``(N, C, H, W)`` from a convolution (statistics over N, H and W).
        gamma, beta: the scale and shift, ``(C,)``.
        moving_mean, moving_var: running estimates ``(C,)``, updated in place
            when ``training``: ``moving = (1 - momentum) * moving + momentum * batch``.
        eps: added to the variance for numerical stability.
        momentum: weight of the current batch in the running estimates.
        training: use (and record) the batch statistics; else use the running ones.
    """
    shape = (1, -1) + (1,) * (X.dim() - 2)  # broadcast a (C,) vector over X
    if training:
        dims = [d for d in range(X.dim()) if d != 1]
        count = X.numel() // X.shape[1]
        if count < 2:
            raise ValueError(f"batch norm needs more than 1 value per feature in training, got input {tuple(X.shape)}")
        mean = X.mean(dim=dims)
        var = ((X - mean.reshape(shape)) ** 2).mean(dim=dims)  # biased: divides by count
        with torch.no_grad():
            moving_mean.mul_(1 - momentum).add_(momentum * mean)
            moving_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))
    else:
        mean, var = moving_mean, moving_var
    X_hat = (X - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * X_hat + beta.reshape(shape)


class BatchNorm(nn.Module):
    """A batch-normalisation layer (notes §2.6.2), twin of ``nn.BatchNorm1d``/``2d``.

    Args:
        num_features: ``C``: the outputs of a linear layer or the channels of
            a convolution.
        num_dims: 2 for ``(N, C)`` inputs, 4 for ``(N, C, H, W)`` (3 accepts
            ``(N, C, L)`` as ``nn.BatchNorm1d`` does).
        eps: added to the variance.
        momentum: weight of each batch in the running statistics; ``None``
            uses the cumulative average over all batches seen, as PyTorch does.
    """

    def __init__(self, num_features: int, num_dims: int = 4, *, eps: float = 1e-5,
                 momentum: float | None = 0.1) -> None:  # fmt: skip
        super().__init__()
        if num_dims not in (2, 3, 4):
            raise ValueError(f"num_dims must be 2 (N, C), 3 (N, C, L) or 4 (N, C, H, W), got {num_dims}")
        self.num_features, self.num_dims, self.eps, self.momentum = num_features, num_dims, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))  # gamma
        self.bias = nn.Parameter(torch.zeros(num_features))  # beta
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.dim() != self.num_dims and not (self.num_dims in (2, 3) and X.dim() in (2, 3)):
            raise ValueError(f"BatchNorm(num_dims={self.num_dims}) got an input of shape {tuple(X.shape)}")
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        return batch_norm(X, self.weight, self.bias, self.running_mean, self.running_var,
                          eps=self.eps, momentum=momentum or 0.0, training=self.training)  # fmt: skip

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_dims={self.num_dims}, eps={self.eps}, momentum={self.momentum}"
