"""pool2d equals nn.MaxPool2d / nn.AvgPool2d (outputs and gradients, float64) and the book's values."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from divekit.nn.pooling import Pool2D, pool2d


def test_book_values():
    X = torch.arange(9.0).reshape(3, 3)
    assert pool2d(X, (2, 2)).tolist() == [[4.0, 5.0], [7.0, 8.0]]
    assert pool2d(X, (2, 2), "avg").tolist() == [[2.0, 3.0], [5.0, 6.0]]


def random_case(seed: int) -> tuple:
    rng = random.Random(seed)
    k = (rng.randint(1, 4), rng.randint(1, 4))
    stride = (rng.randint(1, 3), rng.randint(1, 3))
    padding = (rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2))
    shape = (rng.randint(1, 3), rng.randint(1, 3), rng.randint(k[0], 9), rng.randint(k[1], 9))
    return k, stride, padding, shape


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("seed", range(8))
def test_matches_torch_pooling(mode, seed):
    k, stride, padding, shape = random_case(seed)
    ref_layer = (nn.MaxPool2d if mode == "max" else nn.AvgPool2d)(k, stride=stride, padding=padding)
    X = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ours, ref = pool2d(X, k, mode, stride=stride, padding=padding), ref_layer(X)
    torch.testing.assert_close(ours, ref)
    probe = torch.randn_like(ref)
    (g_ours,) = torch.autograd.grad((ours * probe).sum(), X)
    (g_ref,) = torch.autograd.grad((ref * probe).sum(), X)
    torch.testing.assert_close(g_ours, g_ref)


def test_layer_defaults_to_stride_equal_to_window_like_torch():
    X = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(Pool2D(2)(X), nn.MaxPool2d(2)(X))
    torch.testing.assert_close(Pool2D(3, "avg", padding=1)(X), nn.AvgPool2d(3, padding=1)(X))


def test_channels_are_pooled_separately():
    X = torch.stack([torch.arange(16.0).reshape(4, 4), -torch.arange(16.0).reshape(4, 4)])
    Y = pool2d(X, 2, stride=2)
    assert Y[0].tolist() == [[5.0, 7.0], [13.0, 15.0]]
    assert Y[1].tolist() == [[0.0, -2.0], [-8.0, -10.0]]


@pytest.mark.parametrize("bad", [{"mode": "median"}, {"padding": 2}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        pool2d(torch.zeros(4, 4), 2, **bad)
