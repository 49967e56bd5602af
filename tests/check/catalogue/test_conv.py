"""corr2d, its multi-channel forms and Conv2D: the reference and an independent version pass, real mistakes do not."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from divekit.nn import conv
from divekit.check import check
from tests.check.support import Case, case_id, verify


# ----------------------------------------------------------------------------- corr2d, as learners write it
def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_short_range(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h, X.shape[1] - w))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_flipped(X, K):
    return corr2d(X, torch.flip(K, dims=(0, 1)))


def corr2d_mean(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).mean()
    return Y


def corr2d_swapped(X, K):
    w, h = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def corr2d_python_numbers(X, K):
    h, w = K.shape
    rows = [[(X[i:i + h, j:j + w] * K).sum().item() for j in range(X.shape[1] - w + 1)]
            for i in range(X.shape[0] - h + 1)]  # fmt: skip
    return torch.tensor(rows)


def corr2d_matmul(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] @ K).sum()
    return Y


# ----------------------------------------------------------------------------- several channels
def corr2d_multi_in(X, K):
    return sum(corr2d(x, k) for x, k in zip(X, K))


def corr2d_multi_in_stacked(X, K):
    return torch.stack([corr2d(x, k) for x, k in zip(X, K)])


def corr2d_multi_in_first(X, K):
    return corr2d(X[0], K[0])


def corr2d_multi_in_mean(X, K):
    return sum(corr2d(x, k) for x, k in zip(X, K)) / X.shape[0]


def corr2d_multi_in_reversed(X, K):
    return sum(corr2d(x, k) for x, k in zip(X, reversed(K)))


def corr2d_multi_in_out(X, K):
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_cat(X, K):
    return torch.cat([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_merged(X, K):
    return corr2d_multi_in(X, K.sum(0))


def corr2d_multi_in_out_last_dim(X, K):
    return torch.stack([corr2d_multi_in(X, k) for k in K], 2)


# ----------------------------------------------------------------------------- Conv2D layers
class BookConv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias


class BookConv2DNoBias(BookConv2D):
    def forward(self, x):
        return corr2d(x, self.weight)


class BookConv2DData(BookConv2D):
    def forward(self, x):
        return corr2d(x, self.weight.data) + self.bias.data


class TwinConv2D(nn.Module):
    """nn.Conv2d's layout, computed with F.conv2d: an implementation independent of divekit's."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, *kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.stride, self.padding = stride, padding

    def forward(self, X):
        return F.conv2d(X, self.weight, self.bias, stride=self.stride, padding=self.padding)


class TwinConv2DNoStride(TwinConv2D):
    def forward(self, X):
        return F.conv2d(X, self.weight, self.bias, padding=self.padding)


class TwinConv2DOneSided(TwinConv2D):
    def forward(self, X):
        ph, pw = (self.padding, self.padding) if isinstance(self.padding, int) else self.padding
        return F.conv2d(F.pad(X, (pw, 0, ph, 0)), self.weight, self.bias, stride=self.stride)


class TwinConv2DBiasLast(TwinConv2D):
    def forward(self, X):
        return F.conv2d(X, self.weight, stride=self.stride, padding=self.padding) + self.bias


CASES = [
    Case("corr2d", conv.corr2d),
    Case("corr2d", corr2d),
    Case("corr2d", corr2d_short_range, "last row or column of windows is missing", "range(h - kh) misses a window"),
    Case("corr2d", corr2d_flipped, "kernel is flipped", "flips the kernel (convolution)"),
    Case("corr2d", corr2d_mean, "averaged", ".mean() instead of .sum() per window"),
    Case("corr2d", corr2d_swapped, "height and width are swapped", "kernel height and width swapped"),
    Case("corr2d", corr2d_python_numbers, "no gradient flows back", "builds Y from Python floats"),
    Case("corr2d", corr2d_matmul, "not a matrix product", "window @ K instead of window * K"),
    Case("corr2d-multi-in", conv.corr2d_multi_in),
    Case("corr2d-multi-in", corr2d_multi_in),
    Case("corr2d-multi-in", corr2d_multi_in_stacked, "stacked: add them up", "stacks the channels"),
    Case("corr2d-multi-in", corr2d_multi_in_first, "only the first channel", "uses channel 0 only"),
    Case("corr2d-multi-in", corr2d_multi_in_mean, "averaged", "averages over channels"),
    Case("corr2d-multi-in", corr2d_multi_in_reversed, "wrong channels", "pairs channels with the wrong kernels"),
    Case("corr2d-multi-in-out", conv.corr2d_multi_in_out),
    Case("corr2d-multi-in-out", corr2d_multi_in_out),
    Case("corr2d-multi-in-out", corr2d_multi_in_out_cat, "torch.cat joins", "torch.cat instead of torch.stack"),
    Case("corr2d-multi-in-out", corr2d_multi_in_out_merged, "merged into one", "adds the kernels into one"),
    Case("corr2d-multi-in-out", corr2d_multi_in_out_last_dim, "wrong dimension", "stacks along the last dimension"),
    Case("conv2d", conv.Conv2D),
    Case("conv2d", TwinConv2D),
    Case("conv2d", BookConv2D),
    Case("conv2d", BookConv2DNoBias, "bias is never added", "forgets the bias"),
    Case("conv2d", BookConv2DData, "reads .data", "uses .data in forward"),
    Case("conv2d", TwinConv2DNoStride, "stride is ignored", "ignores the stride"),
    Case("conv2d", TwinConv2DOneSided, "one side only", "pads one side only"),
    Case("conv2d", TwinConv2DBiasLast, "along the last dimension", "adds a (co,) bias along the width"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)


def test_conv2d_book_layer_takes_the_references_weight_by_name():
    report = check(BookConv2D, "conv2d", max_examples=2)
    assert report.parameters == "parameters copied from the reference by name: weight, bias"
    assert report.signature.startswith("Conv2D(kernel_size)")
