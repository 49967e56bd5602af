"""The opt-in fast path of the scratch recurrent layers (``fast=True`` in :mod:`divekit.nn.recurrent`).

The readable layers let autograd record every operation of every time step,
then walk them back one by one. Here each layer direction is one
``torch.autograd.Function`` with a hand-written backward through time (notes
§6.5 通过时间反向传播, BPTT) that computes the same values:

- the forward loop records nothing: each step is a few in-place operations
  on small ``(N, H)`` tensors, and the outputs go straight into one
  ``(T, N, H)`` tensor instead of being stacked at the end;
- the backward loop only carries ``dL/dh`` (and ``dL/dc``) back in time, one
  ``(N, G*H) @ (G*H, H)`` product per step; the weight gradient
  ``dL/dW_hh = sum_t dG_t^T h_{t-1}`` is then one product over all steps
  (autograd makes ``T`` of them and adds them up);
- ``tanh(a)`` is computed as ``2 sigmoid(2a) - 1``: the same function, and
  PyTorch's CPU ``tanh`` is several times slower than its ``sigmoid``;
- on the CPU in float32, when the products are large enough, they go to
  oneDNN (PyTorch's own CPU kernel library; the step weights packed once per
  call) when this build has it: on this project's AMD EPYC machine, MKL's
  GEMM behind ``torch.mm`` runs at AVX2 speed and oneDNN's up to twice as
  fast. So does the input projection ``X W_ih^T`` of all steps. The ops are
  PyTorch-internal (its compiler uses them), so they are probed once and
  the fast path falls back to ``torch.addmm`` where they are missing or
  disagree; :data:`USE_ONEDNN` switches them off.

Memory is laid out for the CPU's allocator: the activations kept for the
backward pass are one small tensor per step, and the large scratch buffers of
a backward pass are kept by the thread from one call to the next. A fresh
large buffer is mapped anew from the system at every batch and costs a page
fault per 4 KiB (about 2 us each on the test machine); small tensors and
kept buffers do not.

The layers' parameters and initial state stay those of
:mod:`divekit.nn.recurrent`; tests prove outputs, final states and gradients
equal to the readable path. The backward is ``once_differentiable``: no
double backward through the fast path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import torch
from torch.autograd.function import FunctionCtx, once_differentiable
from torch.nn import functional as F

State = tuple[torch.Tensor, ...]
Steps = tuple[torch.Tensor, State]  # the outputs (T, N, H) and the final state

USE_ONEDNN = True  # False: always torch.addmm (to measure what oneDNN adds, or to rule it out)
ONEDNN_MIN_FLOPS = 4e6  # smaller step products stay on torch.addmm (see _Products)


# ------------------------------------------------------------------ kernels
def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """``tanh`` in place, as ``2 sigmoid(2x) - 1`` (the same function, a faster kernel on the CPU)."""
    return x.mul_(2).sigmoid_().mul_(2).sub_(1)


class _OneDNN(NamedTuple):
    linear: Callable[..., torch.Tensor]  # (x, W, bias=None) -> x @ W^T + bias; W plain or packed
    pack: Callable[[torch.Tensor, int], torch.Tensor]  # (W, batch) -> W in oneDNN's own layout


@cache
def _onednn() -> _OneDNN | None:
    """oneDNN's linear kernel and weight packing, if this PyTorch has them and they agree with ``torch.mm``."""
    ops = getattr(torch.ops, "mkldnn", None)
    linear_op, pack_op = getattr(ops, "_linear_pointwise", None), getattr(ops, "_reorder_linear_weight", None)
    if linear_op is None or pack_op is None or not torch.backends.mkldnn.is_available():
        return None
    kernels = _OneDNN(lambda x, W, b=None: linear_op(x, W, b, "none", [], ""), lambda W, batch: pack_op(W, batch))
    try:
        x, W = torch.randn(3, 5), torch.randn(4, 5)
        ok = all(torch.allclose(kernels.linear(x, w), x @ W.t(), atol=1e-5) for w in (W, kernels.pack(W, 3)))
    except (RuntimeError, TypeError):  # an op whose signature changed, or a build without the kernel
        return None
    return kernels if ok else None


class _Products:
    """The matrix products of one layer direction, by the best kernel for its steps.

    oneDNN costs about 12 us more per call than ``addmm`` and wins from about
    4 MFLOP per product (measured on 2 AMD EPYC cores: 1.6x at batch 32 and
    hidden 256 with 3 gates, 0.3x at hidden 16), so small steps keep ``addmm``.
    """

    def __init__(self, like: torch.Tensor, W_hh: torch.Tensor) -> None:
        self.batch = like.shape[1]
        big = 2 * self.batch * W_hh.numel() >= ONEDNN_MIN_FLOPS  # one step's product: (N, H) @ (H, G*H)
        eligible = USE_ONEDNN and big and like.device.type == "cpu" and like.dtype == torch.float32
        self.onednn = _onednn() if eligible else None
        self.linear = self.onednn.linear if self.onednn else None

    def weight(self, W: torch.Tensor) -> torch.Tensor:
        """``W`` as :meth:`mm` reads it fastest: packed once for oneDNN (17-21% faster per step), else as is."""
        return W if self.onednn is None else self.onednn.pack(W.contiguous(), self.batch)

    def mm(self, x: torch.Tensor, W: torch.Tensor, *, acc: torch.Tensor | None = None,
           bias: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """``acc + x @ W^T`` (``acc`` an ``(N, O)`` tensor) or ``x @ W^T + bias``, into ``out`` if given.

        ``W`` comes from :meth:`weight`.
        """
        if self.linear is None:
            base = acc if acc is not None else bias
            return torch.mm(x, W.t(), out=out) if base is None else torch.addmm(base, x, W.t(), out=out)
        y = self.linear(x, W, bias)
        if acc is not None:
            return torch.add(acc, y, out=out)
        return y if out is None else out.copy_(y)

    def weight_grad(self, dG: torch.Tensor, Hs: torch.Tensor, h0: torch.Tensor, reverse: bool) -> torch.Tensor:
        """``dL/dW_hh = sum_t dG_t^T h_{t-1}`` from the gate gradients ``dG`` ``(T, N, G*H)`` of every step.

        One product over the ``(T-1) * N`` rows of the steps that started
        from an output, plus the step that started from ``h0``. ``torch.mm``
        takes the transposed views as they are. oneDNN wants both operands
        transposed in memory; copied whole into two buffers kept between
        calls, that still costs well under MKL's product here (RNN, hidden
        512: 0.2 + 0.3 + 2.7 ms against 6.0 ms).
        """
        first, rest, inputs = (-1, slice(None, -1), slice(1, None)) if reverse else (0, slice(1, None), slice(None, -1))
        dG_rest, h_inputs = dG[rest].flatten(0, 1), Hs[inputs].flatten(0, 1)  # ((T-1) N, G*H), ((T-1) N, H)
        if self.linear is None or len(dG) == 1:
            dW = torch.mm(dG_rest.t(), h_inputs)
        else:
            dW = self.linear(_kept("dG^T", dG_rest.t().shape, dG).copy_(dG_rest.t()),
                             _kept("h^T", h_inputs.t().shape, Hs).copy_(h_inputs.t()))  # fmt: skip
        return dW.addmm_(dG[first].t(), h0)


def project(X: torch.Tensor, W: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The input projection ``X W^T + bias`` of every step ``(T, N, I) -> (T, N, G*H)``, like ``F.linear``.

    On the CPU in float32 it goes to oneDNN with a hand-written backward:
    MKL runs this thin product (the book's one-hot input has I = 28) at a
    fraction of its speed. Elsewhere it is ``F.linear``.
    """
    flops = 2 * X[..., 0].numel() * W.numel()
    eligible = USE_ONEDNN and flops >= ONEDNN_MIN_FLOPS and X.device.type == "cpu" and X.dtype == torch.float32
    return _Projection.apply(X, W, bias) if eligible and _onednn() else F.linear(X, W, bias)


class _Projection(torch.autograd.Function):
    """``F.linear`` over ``(T, N, I)`` by oneDNN; the weight gradient from operands transposed in kept buffers."""

    @staticmethod
    def forward(ctx: FunctionCtx, X, W, bias):  # type: ignore[override]
        ctx.save_for_backward(X, W)
        ctx.has_bias = bias is not None
        return _onednn().linear(X.reshape(-1, X.shape[-1]), W, bias).unflatten(0, X.shape[:-1])

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dY):  # type: ignore[override]
        X, W = ctx.saved_tensors
        linear, needs = _onednn().linear, ctx.needs_input_grad
        dY2, X2 = dY.reshape(-1, dY.shape[-1]), X.reshape(-1, X.shape[-1])  # (T*N, G*H), (T*N, I)
        dX = linear(dY2, W.t().contiguous()).view_as(X) if needs[0] else None
        dW = linear(_kept("dY^T", dY2.t().shape, dY2).copy_(dY2.t()),
                    _kept("X^T", X2.t().shape, X2).copy_(X2.t())) if needs[1] else None  # fmt: skip
        return dX, dW, dY2.sum(0) if ctx.has_bias and needs[2] else None


_THREAD = threading.local()


def _kept(name: str, shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """A buffer this thread keeps from one backward pass to the next.

    Only for buffers used within one backward call. A fresh large buffer
    would be mapped anew from the system at every batch, at a page fault per
    4 KiB (about 2 us each on the test machine); a kept one is not.
    """
    buffers = _THREAD.__dict__.setdefault("buffers", {})
    buffer = buffers.get(name)
    if buffer is None or buffer.shape != shape or buffer.dtype != like.dtype or buffer.device != like.device:
        buffer = buffers[name] = like.new_empty(shape)
    return buffer


def _steps(*sequences: torch.Tensor | tuple[torch.Tensor, ...], reverse: bool) -> list[tuple[torch.Tensor, ...]]:
    """Per-step views of ``(T, ...)`` tensors (one ``unbind`` each), in the order the loop visits the steps.

    Made once before the loop: indexing and slicing inside it would cost a
    few microseconds per view, as much as the small element-wise steps.
    """
    steps = list(zip(*(s.unbind(0) if isinstance(s, torch.Tensor) else s for s in sequences)))
    return steps[::-1] if reverse else steps


def _previous(Hs: torch.Tensor, h0: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, ...]:
    """The state each step started from: ``h_{t-1}`` (``h_{t+1}`` reading backwards), as views, no copy."""
    steps = Hs.unbind(0)
    return (*steps[1:], h0) if reverse else (h0, *steps[:-1])


def _with_final(Hs: torch.Tensor, reverse: bool, *more: torch.Tensor) -> Steps:
    """The outputs and the final state: ``h`` of the last step read (the first one when reading backwards)."""
    return Hs, (Hs[0 if reverse else -1], *more)


def _gates(X: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
    """The ``count`` gate blocks of ``(..., count*H)`` as ``(..., H)`` views."""
    return X.chunk(count, dim=-1)


# --------------------------------------------------------------------- RNN
class _RNNSteps(torch.autograd.Function):
    """``H_t = phi(XW_t + H_{t-1} W_hh^T)`` for every step; ``XW`` holds the input projection and both biases."""

    @staticmethod
    def forward(ctx: FunctionCtx, XW, h0, W_hh, relu: bool, reverse: bool):  # type: ignore[override]
        products, Hs = _Products(XW, W_hh), torch.empty_like(XW)  # (T, N, H)
        W, h = products.weight(W_hh), h0
        for xw, h_t in _steps(XW, Hs, reverse=reverse):
            h = products.mm(h, W, acc=xw, out=h_t)
            h = h.relu_() if relu else _tanh_(h)
        ctx.save_for_backward(Hs, h0, W_hh)
        ctx.relu, ctx.reverse = relu, reverse
        return Hs

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs):  # type: ignore[override]
        Hs, h0, W_hh = ctx.saved_tensors
        products = _Products(Hs, W_hh)
        W_back = products.weight(W_hh.t())  # mm(x, W_back) = x @ W_hh
        dP = torch.empty_like(Hs)  # dL/d(pre-activation) at every step
        dh, ones = torch.zeros_like(h0), torch.ones_like(h0)  # dL/dh_{t-1}, carried back in time
        for dy, h, dp in _steps(dHs, Hs, dP, reverse=not ctx.reverse):
            torch.add(dy, dh, out=dp)  # dL/dh_t: from the output and from the next step
            dp.mul_(h > 0) if ctx.relu else dp.mul_(torch.addcmul(ones, h, h, value=-1))  # phi' from phi's output
            dh = products.mm(dp, W_back)  # dL/dh_{t-1}
        return dP, dh, products.weight_grad(dP, Hs, h0, ctx.reverse), None, None


def rnn_steps(XW: torch.Tensor, state: State, W_hh: torch.Tensor, *, relu: bool, reverse: bool) -> Steps:
    """The fast RNN loop over ``XW`` ``(T, N, H)``: the outputs ``(T, N, H)`` and the final ``(h,)``."""
    return _with_final(_RNNSteps.apply(XW, state[0], W_hh, relu, reverse), reverse)


# --------------------------------------------------------------------- GRU
class _GRUSteps(torch.autograd.Function):
    """The GRU of :class:`divekit.nn.recurrent.GRU`; ``XW`` holds ``X W_ih^T + b_ih``, gates ``r, z, n``."""

    @staticmethod
    def forward(ctx: FunctionCtx, XW, h0, W_hh, b_hh, reverse: bool):  # type: ignore[override]
        products, H = _Products(XW, W_hh), h0.shape[-1]
        Hs, W, h, saved = XW.new_empty(*XW.shape[:2], H), products.weight(W_hh), h0, []
        for x_rz, x_n, h_t in _steps(*XW.split(2 * H, dim=2), Hs, reverse=reverse):
            h_rz, h_n = products.mm(h, W, bias=b_hh).split(2 * H, dim=1)  # h W_hh^T + b_hh, (N, 2H) and (N, H)
            rz = torch.add(x_rz, h_rz).sigmoid_()
            r, z = _gates(rz, 2)
            n = _tanh_(torch.addcmul(x_n, r, h_n))
            h = torch.lerp(n, h, z, out=h_t)  # h' = n + z * (h - n)
            saved.append((rz, r, z, n, h_n))
        ctx.save_for_backward(Hs, h0, W_hh)
        ctx.saved = saved[::-1] if reverse else saved  # in time order, one step's small tensors each
        ctx.has_bias, ctx.reverse = b_hh is not None, reverse
        return Hs

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs):  # type: ignore[override]
        Hs, h0, W_hh = ctx.saved_tensors
        products, H = _Products(Hs, W_hh), h0.shape[-1]
        W_back = products.weight(W_hh.t())  # mm(x, W_back) = x @ W_hh
        dXW = Hs.new_empty(*Hs.shape[:2], 3 * H)  # dL/d(x W_ih^T + b_ih) at every step
        dHW = _kept("dHW", dXW.shape, dXW)  # dL/d(h_{t-1} W_hh^T + b_hh): h_n enters multiplied by r
        dh, ones = torch.zeros_like(h0), torch.ones_like(h0)  # dL/dh_{t-1}, carried back in time
        steps = _steps(dHs, ctx.saved, _previous(Hs, h0, ctx.reverse), dXW[..., : 2 * H], *_gates(dXW, 3), dHW,
                       *dHW.split(2 * H, dim=2), reverse=not ctx.reverse)  # fmt: skip
        for dy, (rz, r, z, n, h_n), h_previous, dx_rz, dx_r, dx_z, dx_n, dhw, dh_rz, dh_n in steps:
            g = dy + dh  # dL/dh_t; h_t = n + z * (h_{t-1} - n)
            torch.addcmul(g, g, z, value=-1, out=dx_n).mul_(torch.addcmul(ones, n, n, value=-1))  # n = tanh(..)
            torch.mul(dx_n, h_n, out=dx_r)  # dL/dr
            torch.sub(h_previous, n, out=dx_z).mul_(g)  # dL/dz
            dx_rz.mul_(torch.addcmul(rz, rz, rz, value=-1))  # through the sigmoids of r and z: s (1 - s)
            dh_rz.copy_(dx_rz)
            torch.mul(dx_n, r, out=dh_n)
            dh = products.mm(dhw, W_back, acc=g.mul_(z))  # dL/dh_{t-1}: through W_hh, and through z directly
        db_hh = dHW.sum((0, 1)) if ctx.has_bias else None
        return dXW, dh, products.weight_grad(dHW, Hs, h0, ctx.reverse), db_hh, None


def gru_steps(XW: torch.Tensor, state: State, W_hh: torch.Tensor, b_hh: torch.Tensor | None, *,
              reverse: bool) -> Steps:  # fmt: skip
    """The fast GRU loop over ``XW`` ``(T, N, 3H)``: the outputs ``(T, N, H)`` and the final ``(h,)``."""
    return _with_final(_GRUSteps.apply(XW, state[0], W_hh, b_hh, reverse), reverse)


# -------------------------------------------------------------------- LSTM
class _LSTMSteps(torch.autograd.Function):
    """The LSTM of :class:`divekit.nn.recurrent.LSTM`; ``XW`` holds the input projection and both biases."""

    @staticmethod
    def forward(ctx: FunctionCtx, XW, h0, c0, W_hh, reverse: bool):  # type: ignore[override]
        products, Hs = _Products(XW, W_hh), XW.new_empty(*XW.shape[:2], h0.shape[-1])
        W, h, c, saved = products.weight(W_hh), h0, c0, []
        for xw, h_t in _steps(XW, Hs, reverse=reverse):
            gates = products.mm(h, W, acc=xw)  # (N, 4H)
            i, f, g, o = _gates(gates, 4)
            g.mul_(2)  # one sigmoid for the four gates: tanh(a) = 2 sigmoid(2a) - 1 for the candidate g
            gates.sigmoid_()
            g.mul_(2).sub_(1)
            c_previous, c = c, torch.addcmul(f * c, i, g)
            tanh_c = _tanh_(c.clone())
            h = torch.mul(o, tanh_c, out=h_t)
            saved.append((gates, c_previous, tanh_c))
        ctx.save_for_backward(Hs, h0, W_hh)
        ctx.saved, ctx.reverse = saved[::-1] if reverse else saved, reverse  # in time order, small tensors
        return Hs, c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs, dc_last):  # type: ignore[override]
        Hs, h0, W_hh = ctx.saved_tensors
        products = _Products(Hs, W_hh)
        W_back = products.weight(W_hh.t())  # mm(x, W_back) = x @ W_hh
        dG = Hs.new_empty(*Hs.shape[:2], W_hh.shape[0])  # dL/d(gate pre-activations) at every step, (T, N, 4H)
        dh, dc, ones = torch.zeros_like(h0), dc_last.clone(), torch.ones_like(h0)  # carried back in time
        for dy, (gates, c_previous, tanh_c), dgates in _steps(dHs, ctx.saved, dG, reverse=not ctx.reverse):
            (i, f, g, o), (di, df, dg, do) = _gates(gates, 4), _gates(dgates, 4)
            gh = dy + dh  # dL/dh_t; h_t = o * tanh(c_t)
            dc.addcmul_(gh, torch.addcmul(ones, tanh_c, tanh_c, value=-1).mul_(o))  # dL/dc_t: carried + through h_t
            torch.addcmul(gates, gates, gates, value=-1, out=dgates)  # the sigmoids' slopes s (1 - s) ...
            torch.addcmul(ones, g, g, value=-1, out=dg)  # ... and tanh's for the candidate g
            di.mul_(dc).mul_(g)  # c_t = f * c_{t-1} + i * g
            df.mul_(dc).mul_(c_previous)
            dg.mul_(dc).mul_(i)
            do.mul_(gh).mul_(tanh_c)
            dc.mul_(f)  # dL/dc_{t-1}
            dh = products.mm(dgates, W_back)
        return dG, dh, dc, products.weight_grad(dG, Hs, h0, ctx.reverse), None


def lstm_steps(XW: torch.Tensor, state: State, W_hh: torch.Tensor, *, reverse: bool) -> Steps:
    """The fast LSTM loop over ``XW`` ``(T, N, 4H)``: the outputs ``(T, N, H)`` and the final ``(h, c)``."""
    Hs, c = _LSTMSteps.apply(XW, state[0], state[1], W_hh, reverse)
    return _with_final(Hs, reverse, c)
