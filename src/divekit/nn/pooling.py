"""Pooling from scratch (notes §2.2 池化层).

A pooling window slides over the input like a convolution kernel, but it has
no weights: it reports the largest entry it covers (max pooling) or their
mean (average pooling). Pooling makes a feature map less sensitive to where
exactly a feature lies, and with a stride larger than one it shrinks the map.

:func:`pool2d` works on the last two dimensions of any tensor, so one call
pools every channel of every image. Its padding follows PyTorch: max pooling
pads with ``-inf`` (a padded cell never wins), average pooling pads with
zeros and divides by the whole window (``count_include_pad=True``).
"""

from __future__ import annotations

import torch
from torch import nn

from divekit.nn.conv import IntPair, _pad2d, _pair

POOL_MODES = ("max", "avg")


def pool2d(
    X: torch.Tensor,
    pool_size: IntPair,
    mode: str = "max",
    *,
    stride: IntPair | None = 1,
    padding: IntPair = 0,
) -> torch.Tensor:
    """Max or average pooling over the last two dimensions of ``X``.

    The notes' ``pool2d(X, pool_size, mode)`` slides one pixel at a time, so
    ``stride`` defaults to 1 here; ``stride=None`` uses the window size, as
    ``nn.MaxPool2d`` and ``nn.AvgPool2d`` do.

    Args:
        X: ``(..., h, w)``: an image, a stack of channels or a batch.
        pool_size: window ``p`` or ``(ph, pw)``.
        mode: ``"max"`` or ``"avg"``.
        stride: window step (``None``: the window size).
        padding: rows/columns added on each side; at most half the window.
    """
    if mode not in POOL_MODES:
        raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'avg'")
    ph, pw = _pair(pool_size)
    sh, sw = _pair(stride if stride is not None else pool_size)
    pad_h, pad_w = _pair(padding)
    if 2 * pad_h > ph or 2 * pad_w > pw:
        raise ValueError(f"padding {padding} must be at most half the window {pool_size}")
    X = _pad2d(X, padding, value=float("-inf") if mode == "max" else 0.0)
    windows = X.unfold(-2, ph, sh).unfold(-2, pw, sw)  # (..., out_h, out_w, ph, pw)
    return windows.amax(dim=(-2, -1)) if mode == "max" else windows.mean(dim=(-2, -1))


class Pool2D(nn.Module):
    """:func:`pool2d` as a layer, with ``nn.MaxPool2d``'s defaults (stride = window).

    Args:
        pool_size: window ``p`` or ``(ph, pw)``.
        mode: ``"max"`` or ``"avg"``.
        stride: window step (``None``: the window size).
        padding: rows/columns added on each side.
    """

    def __init__(self, pool_size: IntPair, mode: str = "max", *, stride: IntPair | None = None,
                 padding: IntPair = 0) -> None:  # fmt: skip
        super().__init__()
        if mode not in POOL_MODES:
            raise ValueError(f"unknown pooling mode {mode!r}; use 'max' or 'avg'")
        self.pool_size, self.mode, self.stride, self.padding = pool_size, mode, stride, padding

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return pool2d(X, self.pool_size, self.mode, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return f"{self.pool_size}, mode={self.mode!r}, stride={self.stride}, padding={self.padding}"
