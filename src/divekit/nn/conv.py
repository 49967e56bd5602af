"""Convolution from scratch (notes §2.1 卷积层).

The notes build a convolutional layer from one operation, the two-dimensional
cross-correlation: slide a kernel ``K`` over an image ``X`` and, at each
position, multiply the overlapping entries and add them up,

    Y[i, j] = sum_{a, b} X[i * s_h + a, j * s_w + b] * K[a, b].

From it come, in the notes' order:

- :func:`corr2d`: one channel in, one channel out (with padding and stride);
- :func:`corr2d_multi_in`: several input channels, one kernel per channel, summed;
- :func:`corr2d_multi_in_out`: a stack of such kernels, one per output channel;
- :func:`corr2d_multi_in_out_1x1`: the 1x1 case, which is a matrix product;
- :class:`Conv2D`: a learnable layer, a drop-in twin of ``nn.Conv2d`` (same
  parameter names and shapes) that computes the same thing batched;
- :func:`edge_image` and :func:`learn_kernel`: the notes' exercise, which
  learns the edge detector ``[1, -1]`` back from an image and its edges.

Every piece is tested against ``torch.nn.functional.conv2d``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

IntPair = int | tuple[int, int]


def _pair(value: IntPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _pad2d(X: torch.Tensor, padding: IntPair, value: float = 0.0) -> torch.Tensor:
    """Pad the last two dimensions by ``padding`` rows and columns on each side."""
    ph, pw = _pair(padding)
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    return F.pad(X, (pw, pw, ph, ph), value=value) if ph or pw else X


def output_size(size: int, kernel: int, *, stride: int = 1, padding: int = 0) -> int:
    """Length of a convolution's (or pooling's) output: floor((n + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def corr2d(X: torch.Tensor, K: torch.Tensor, *, stride: IntPair = 1, padding: IntPair = 0) -> torch.Tensor:
    """Two-dimensional cross-correlation of an image ``X (h, w)`` with a kernel ``K (kh, kw)``.

    Written as the notes write it, one output entry at a time, so it reads as
    the definition; differentiable through ``X`` and ``K``.

    Args:
        X: the input, ``(h, w)``.
        K: the kernel, ``(kh, kw)``.
        stride: rows and columns the window moves per step.
        padding: zero rows/columns added on each side of ``X``.
    """
    sh, sw = _pair(stride)
    X = _pad2d(X, padding)
    kh, kw = K.shape
    out_h = output_size(X.shape[0], kh, stride=sh)
    out_w = output_size(X.shape[1], kw, stride=sw)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"kernel {tuple(K.shape)} is larger than the padded input {tuple(X.shape)}")
    rows = [
        torch.stack([(X[i * sh : i * sh + kh, j * sw : j * sw + kw] * K).sum() for j in range(out_w)])
        for i in range(out_h)
    ]
    return torch.stack(rows)  # (out_h, out_w)


def corr2d_multi_in(X: torch.Tensor, K: torch.Tensor, *, stride: IntPair = 1, padding: IntPair = 0) -> torch.Tensor:
    """Several input channels: correlate channel ``c`` of ``X (ci, h, w)`` with ``K[c]`` and sum.

    ``K`` is ``(ci, kh, kw)``; the result is one channel ``(out_h, out_w)``.
    """
    return sum(corr2d(x, k, stride=stride, padding=padding) for x, k in zip(X, K))  # type: ignore[return-value]


def corr2d_multi_in_out(
    X: torch.Tensor, K: torch.Tensor, *, stride: IntPair = 1, padding: IntPair = 0
) -> torch.Tensor:
    """Several output channels: one multi-input correlation per kernel of ``K (co, ci, kh, kw)``.

    Returns ``(co, out_h, out_w)``.
    """
    return torch.stack([corr2d_multi_in(X, k, stride=stride, padding=padding) for k in K], 0)


def corr2d_multi_in_out_1x1(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The 1x1 kernel: at every pixel, a fully connected layer across channels.

    ``X (ci, h, w)`` and ``K (co, ci, 1, 1)`` give ``(co, h, w)`` by one matrix product.
    """
    c_i, h, w = X.shape
    c_o = K.shape[0]
    X = X.reshape(c_i, h * w)  # (ci, h*w): one column per pixel
    Y = K.reshape(c_o, c_i) @ X  # (co, h*w)
    return Y.reshape(c_o, h, w)


def conv2d(
    X: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: IntPair = 1,
    padding: IntPair = 0,
) -> torch.Tensor:
    """A batched :func:`corr2d_multi_in_out`: the same sums for ``(N, ci, h, w)`` at once.

    ``Tensor.unfold`` cuts every window out of the padded input (as views),
    and one ``einsum`` multiplies each window by each kernel and adds up.

    Args:
        X: images ``(N, ci, h, w)``.
        weight: kernels ``(co, ci, kh, kw)``.
        bias: ``(co,)`` added to every output pixel, or ``None``.
        stride, padding: as in :func:`corr2d`.
    """
    sh, sw = _pair(stride)
    kh, kw = weight.shape[-2:]
    X = _pad2d(X, padding)
    windows = X.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, ci, out_h, out_w, kh, kw)
    Y = torch.einsum("ncijab,ocab->noij", windows, weight)  # (N, co, out_h, out_w)
    return Y if bias is None else Y + bias.reshape(1, -1, 1, 1)


class Conv2D(nn.Module):
    """A learnable convolutional layer from scratch, a twin of ``nn.Conv2d``.

    Its parameters are named and shaped as ``nn.Conv2d``'s (``weight``
    ``(out, in, kh, kw)``, ``bias`` ``(out,)``) and initialised the same way,
    so weights copy across in both directions with ``load_state_dict``.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output (one kernel stack each).
        kernel_size: ``k`` or ``(kh, kw)``.
        stride, padding: as in :func:`corr2d`.
        bias: learn a bias per output channel.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        *,
        stride: IntPair = 1,
        padding: IntPair = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *_pair(kernel_size)))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s default: Kaiming-uniform weights, biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return conv2d(X, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, kh, kw = self.weight.shape
        return (f"{in_c}, {out_c}, kernel_size=({kh}, {kw}), stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")  # fmt: skip


def edge_image(height: int = 6, width: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes' edge-detection example: an image and its vertical edges.

    ``X`` is white (1) with a black (0) band in columns 2 to ``width - 3``;
    ``Y = corr2d(X, [[1, -1]])`` is 1 where white turns black, -1 where black
    turns white, and 0 elsewhere.
    """
    X = torch.ones(height, width)
    X[:, 2:-2] = 0
    K = torch.tensor([[1.0, -1.0]])
    return X, corr2d(X, K)


def learn_kernel(
    X: torch.Tensor,
    Y: torch.Tensor,
    kernel_size: IntPair = (1, 2),
    *,
    lr: float = 3e-2,
    steps: int = 10,
    seed: int = 0,
) -> tuple[torch.Tensor, list[float]]:
    """Learn the kernel that maps ``X`` to ``Y`` by gradient descent (the notes' exercise).

    A bias-free :class:`Conv2D` starts from random weights and minimises the
    summed squared error, with a plain gradient step of size ``lr``.

    Returns:
        The learned kernel ``(kh, kw)`` and the loss before each step.
    """
    torch.manual_seed(seed)
    conv = Conv2D(1, 1, kernel_size, bias=False)
    X4, Y4 = X.reshape(1, 1, *X.shape), Y.reshape(1, 1, *Y.shape)  # (N=1, C=1, h, w)
    losses = []
    for _ in range(steps):
        loss = ((conv(X4) - Y4) ** 2).sum()
        conv.zero_grad()
        loss.backward()
        with torch.no_grad():
            conv.weight -= lr * conv.weight.grad
        losses.append(loss.item())
    return conv.weight.detach().reshape(conv.weight.shape[-2:]), losses
