"""pool2d: the reference and the book's loop pass; the usual slips are named."""

from __future__ import annotations

import pytest
import torch

from divekit.nn.pooling import pool2d as reference_pool2d
from tests.check.support import Case, case_id, verify


def pool2d(X, pool_size, mode="max"):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i:i + p_h, j:j + p_w].max()
            elif mode == "avg":
                Y[i, j] = X[i:i + p_h, j:j + p_w].mean()
    return Y


def pool2d_sum(X, pool_size, mode="max"):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i:i + p_h, j:j + p_w]
            Y[i, j] = window.max() if mode == "max" else window.sum()
    return Y


def pool2d_jumps(X, pool_size, mode="max"):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] // p_h, X.shape[1] // p_w))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i * p_h:(i + 1) * p_h, j * p_w:(j + 1) * p_w]
            Y[i, j] = window.max() if mode == "max" else window.mean()
    return Y


def pool2d_short(X, pool_size, mode="max"):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i:i + p_h, j:j + p_w]
            Y[i, j] = window.max() if mode == "max" else window.mean()
    return Y


def pool2d_width_first(X, pool_size, mode="max"):
    p_w, p_h = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i:i + p_h, j:j + p_w]
            Y[i, j] = window.max() if mode == "max" else window.mean()
    return Y


def pool2d_max_only(X, pool_size, mode="max"):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = X[i:i + p_h, j:j + p_w].max()
    return Y


CASES = [
    Case("pool2d", reference_pool2d),
    Case("pool2d", pool2d),
    Case("pool2d", pool2d_sum, "adds the window up", "avg mode sums the window"),
    Case("pool2d", pool2d_jumps, "jumps by the pool size", "windows do not overlap (stride = pool size)"),
    Case("pool2d", pool2d_short, "last row or column of windows is missing", "range(h - p_h) misses a row"),
    Case("pool2d", pool2d_width_first, "height first, then width", "reads pool_size as (p_w, p_h)"),
    Case("pool2d", pool2d_max_only, "still takes the maximum", "ignores mode='avg'"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)
