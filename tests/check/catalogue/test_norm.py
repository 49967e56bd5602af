"""batch_norm and BatchNorm: PyTorch's running statistics are the reference; the book's slips are named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from divekit.nn import norm
from divekit.check import check
from tests.check.support import Case, case_id, verify


def reference_function(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """divekit's batch_norm behind the book's signature (training decided by torch.is_grad_enabled())."""
    Y = norm.batch_norm(X, gamma, beta, moving_mean.view(-1), moving_var.view(-1), eps=eps, momentum=momentum,
                        training=torch.is_grad_enabled())  # fmt: skip
    return Y, moving_mean, moving_var


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """The book's function with the unbiased running variance (and the book's momentum convention)."""
    if not torch.is_grad_enabled():
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        dims = (0,) if X.dim() == 2 else (0, 2, 3)
        mean = X.mean(dim=dims, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
        m = X.numel() // X.shape[1]
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var * m / (m - 1)
    return gamma * X_hat + beta, moving_mean.data, moving_var.data


def batch_norm_book(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """The book's code as printed: the running variance is the biased one."""
    if not torch.is_grad_enabled():
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            mean = X.mean(dim=0)
            var = ((X - mean) ** 2).mean(dim=0)
        else:
            mean = X.mean(dim=(0, 2, 3), keepdim=True)
            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = gamma * X_hat + beta
    return Y, moving_mean.data, moving_var.data


def batch_norm_torch_var(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if not torch.is_grad_enabled():
        return gamma * (X - moving_mean) / torch.sqrt(moving_var + eps) + beta, moving_mean, moving_var
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    mean, var = X.mean(dim=dims, keepdim=True), X.var(dim=dims, keepdim=True)
    Y = gamma * (X - mean) / torch.sqrt(var + eps) + beta
    return Y, (1 - momentum) * moving_mean + momentum * mean, (1 - momentum) * moving_var + momentum * var


def batch_norm_eps_outside(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    _, mean, var = batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum)
    if not torch.is_grad_enabled():
        return gamma * (X - moving_mean) / (torch.sqrt(moving_var) + eps) + beta, mean, var
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    batch_mean = X.mean(dim=dims, keepdim=True)
    batch_var = ((X - batch_mean) ** 2).mean(dim=dims, keepdim=True)
    return gamma * (X - batch_mean) / (torch.sqrt(batch_var) + eps) + beta, mean, var


def batch_norm_batch_only(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    if not torch.is_grad_enabled():
        return gamma * (X - moving_mean) / torch.sqrt(moving_var + eps) + beta, moving_mean, moving_var
    mean = X.mean(dim=0, keepdim=True)
    var = ((X - mean) ** 2).mean(dim=0, keepdim=True)
    Y = gamma * (X - mean) / torch.sqrt(var + eps) + beta
    return Y, moving_mean, moving_var


def batch_norm_always_batch(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    with torch.enable_grad():
        return batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum)


class BatchNorm(nn.Module):
    """The book's layer around the (unbiased) function above."""

    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var, eps=1e-5, momentum=0.9)
        return Y


class BatchNormForgetsStatistics(BatchNorm):
    def forward(self, X):
        Y, _, _ = batch_norm(X, self.gamma, self.beta, self.moving_mean, self.moving_var, eps=1e-5, momentum=0.9)
        return Y


class BatchNormData(BatchNorm):
    def forward(self, X):
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma.data, self.beta.data, self.moving_mean, self.moving_var, eps=1e-5, momentum=0.9)
        return Y


CASES = [
    Case("batch-norm", norm.BatchNorm),
    Case("batch-norm", reference_function),
    Case("batch-norm", batch_norm),
    Case("batch-norm", BatchNorm),
    Case("batch-norm", batch_norm_book, "running variance uses the biased estimate", "the book's biased running var"),
    Case("batch-norm", batch_norm_torch_var, "unbiased variance (torch.var", "normalises with torch.var (unbiased)"),
    Case("batch-norm", batch_norm_eps_outside, "eps belongs inside the square root", "sqrt(var) + eps"),
    Case("batch-norm", batch_norm_batch_only, "over N, H and W", "4-D statistics over N only"),
    Case("batch-norm", batch_norm_always_batch, "evaluation still uses the batch", "batch statistics in evaluation"),
    Case("batch-norm", BatchNormForgetsStatistics, "moving statistics never change", "drops the returned statistics"),
    Case("batch-norm", BatchNormData, "no gradient reaches gamma or beta", "passes gamma.data, beta.data"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)


def test_book_layer_parameters_are_taken_by_order():
    report = check(BatchNorm, "batch-norm", max_examples=2)
    assert report.parameters == "parameters copied from the reference by order: gamma <- weight, beta <- bias"
