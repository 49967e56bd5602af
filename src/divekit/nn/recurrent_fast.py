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
  fast. The input projection ``X W_ih^T`` of all steps is one product per
  call, made inside the same function. The ops are
  PyTorch-internal (its compiler uses them), so they are probed once and
  the fast path falls back to ``torch.addmm`` where they are missing or
  disagree; :data:`USE_ONEDNN` switches them off.

Memory is laid out for the CPU's allocator: the activations kept for the
backward pass are one small tensor per step, and the large scratch buffers
used within one call (the projected inputs, the gate gradients of all steps,
the transposed operands of the weight gradients) are kept by the thread from
one call to the next. A fresh large buffer is mapped anew from the system at
every batch and costs a page fault per 4 KiB (about 2 us each on the test
machine); small tensors and kept buffers do not.

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

State = tuple[torch.Tensor, ...]
Steps = tuple[torch.Tensor, State]  # the outputs (T, N, H) and the final state
Weights = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]  # W_ih, b_ih, W_hh, b_hh

USE_ONEDNN = True  # False: always torch.addmm (to measure what oneDNN adds, or to rule it out)
ONEDNN_MIN_FLOPS = 4e6  # smaller step products stay on torch.addmm (see _Products)


# ------------------------------------------------------------------ kernels
# Constants as 0-dim tensors: a Python number is wrapped into a new tensor at every call (about 2 us here).
_ONE, _TWO = torch.tensor(1.0), torch.tensor(2.0)


def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """``tanh`` in place, as ``2 sigmoid(2x) - 1`` (the same function, a faster kernel on the CPU)."""
    return x.mul_(_TWO).sigmoid_().mul_(_TWO).sub_(_ONE)


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

    def __init__(self, X: torch.Tensor, W_hh: torch.Tensor) -> None:
        self.batch = X.shape[1]
        big = 2 * self.batch * W_hh.numel() >= ONEDNN_MIN_FLOPS  # one step's product: (N, H) @ (H, G*H)
        eligible = USE_ONEDNN and big and X.device.type == "cpu" and X.dtype == torch.float32
        self.onednn = _onednn() if eligible else None

    def weight(self, W: torch.Tensor) -> torch.Tensor:
        """``W`` as :meth:`mm` reads it fastest: packed once for oneDNN (17-21% faster per step), else as is."""
        return W if self.onednn is None else self.onednn.pack(W.contiguous(), self.batch)

    def mm(self, x: torch.Tensor, W: torch.Tensor, *, acc: torch.Tensor | None = None,
           bias: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """``acc + x @ W^T`` (``acc`` an ``(N, O)`` tensor) or ``x @ W^T + bias``, into ``out`` if given."""
        if self.onednn is None:
            base = acc if acc is not None else bias
            return torch.mm(x, W.t(), out=out) if base is None else torch.addmm(base, x, W.t(), out=out)
        y = self.onednn.linear(x, W, bias)
        if acc is not None:
            return torch.add(acc, y, out=out)
        return y if out is None else out.copy_(y)

    def outer(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """``A^T B`` for ``A`` ``(M, P)`` and ``B`` ``(M, Q)``: a weight gradient summed over ``M`` rows.

        ``torch.mm`` takes the transposed views as they are. oneDNN wants both
        operands transposed in memory; copied into kept buffers, that still
        costs well under MKL's product here (RNN, hidden 512: 0.2 + 0.3 +
        2.7 ms against 6.0 ms).
        """
        if self.onednn is None or len(A) == 0:
            return torch.mm(A.t(), B)
        A_T, B_T = _kept("A^T", A.t().shape, A).copy_(A.t()), _kept("B^T", B.t().shape, B).copy_(B.t())
        return self.onednn.linear(A_T, B_T)

    def project(self, X: torch.Tensor, W_ih: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``X W_ih^T + bias`` of every step, ``(T, N, G*H)``, in a kept buffer: read only during this forward."""
        XW = _kept("XW", (*X.shape[:2], W_ih.shape[0]), X)
        self.mm(X.reshape(-1, X.shape[-1]), W_ih, bias=bias, out=XW.view(-1, W_ih.shape[0]))
        return XW

    def input_grads(self, dXW: torch.Tensor, X: torch.Tensor, W_ih: torch.Tensor, *, needs_X: bool,
                    has_bias: bool) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """``dL/dX``, ``dL/dW_ih`` and ``dL/db`` of the projection from its output's gradient ``dXW``."""
        dXW2, X2 = dXW.flatten(0, 1), X.reshape(-1, X.shape[-1])  # (T*N, G*H), (T*N, I)
        dX = self.mm(dXW2, W_ih.t()).view(X.shape) if needs_X else None
        return dX, self.outer(dXW2, X2), dXW2.sum(0) if has_bias else None

    def weight_grad(self, dG: torch.Tensor, Hs: torch.Tensor, h0: torch.Tensor, reverse: bool) -> torch.Tensor:
        """``dL/dW_hh = sum_t dG_t^T h_{t-1}`` from the gate gradients ``dG`` ``(T, N, G*H)`` of every step.

        One product over the steps that started from an output, plus the one
        that started from ``h0`` (no copy of the states into one tensor).
        """
        first, rest, inputs = (-1, slice(None, -1), slice(1, None)) if reverse else (0, slice(1, None), slice(None, -1))
        return self.outer(dG[rest].flatten(0, 1), Hs[inputs].flatten(0, 1)).addmm_(dG[first].t(), h0)


_THREAD = threading.local()
_KEPT_MAX = 32  # buffers per thread, all names and shapes; past it the thread starts afresh


def _kept(name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A scratch buffer this thread keeps from one call to the next, by name, shape, dtype and device.

    Only for buffers read within one forward or one backward call, never
    returned. A fresh large buffer would be mapped anew from the system at
    every batch, at a page fault per 4 KiB (about 2 us each on the test
    machine); a kept one is not.
    """
    buffers = _THREAD.__dict__.setdefault("buffers", {})
    key = (name, tuple(shape), like.dtype, like.device)
    if key not in buffers:
        if len(buffers) >= _KEPT_MAX:
            buffers.clear()
        buffers[key] = like.new_empty(shape)
    return buffers[key]


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


def _folded(b_ih: torch.Tensor | None, b_hh: torch.Tensor | None) -> torch.Tensor | None:
    """``b_ih + b_hh``: both biases add to the same pre-activation (RNN, LSTM)."""
    return None if b_ih is None else b_ih + b_hh


def _gates(X: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
    """The ``count`` gate blocks of ``(..., count*H)`` as ``(..., H)`` views."""
    return X.chunk(count, dim=-1)


# --------------------------------------------------------------------- RNN
class _RNNSteps(torch.autograd.Function):
    """``H_t = phi(X_t W_ih^T + bias + H_{t-1} W_hh^T)`` for every step, ``bias = b_ih + b_hh``."""

    @staticmethod
    def forward(ctx: FunctionCtx, X, h0, W_ih, bias, W_hh, relu: bool, reverse: bool):  # type: ignore[override]
        products, H = _Products(X, W_hh), h0.shape[-1]
        XW, Hs = products.project(X, W_ih, bias), X.new_empty(*X.shape[:2], H)  # (T, N, H) each
        W, h = products.weight(W_hh), h0
        for xw, h_t in _steps(XW, Hs, reverse=reverse):
            h = products.mm(h, W, acc=xw, out=h_t)
            h = h.relu_() if relu else _tanh_(h)
        ctx.save_for_backward(X, h0, W_ih, W_hh, Hs)
        ctx.relu, ctx.reverse, ctx.has_bias = relu, reverse, bias is not None
        return Hs

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs):  # type: ignore[override]
        X, h0, W_ih, W_hh, Hs = ctx.saved_tensors
        products = _Products(X, W_hh)
        W_back = products.weight(W_hh.t())  # mm(x, W_back) = x @ W_hh
        dP = _kept("dG", Hs.shape, Hs)  # dL/d(pre-activation) at every step
        dh, ones = torch.zeros_like(h0), torch.ones_like(h0)  # dL/dh_{t-1}, carried back in time
        for dy, h, dp in _steps(dHs, Hs, dP, reverse=not ctx.reverse):
            torch.add(dy, dh, out=dp)  # dL/dh_t: from the output and from the next step
            dp.mul_(h > 0) if ctx.relu else dp.mul_(torch.addcmul(ones, h, h, value=-1))  # phi' from phi's output
            dh = products.mm(dp, W_back)  # dL/dh_{t-1}
        dX, dW_ih, db = products.input_grads(dP, X, W_ih, needs_X=ctx.needs_input_grad[0], has_bias=ctx.has_bias)
        return dX, dh, dW_ih, db, products.weight_grad(dP, Hs, h0, ctx.reverse), None, None


def rnn_steps(X: torch.Tensor, state: State, weights: Weights, *, relu: bool, reverse: bool) -> Steps:
    """The fast RNN layer direction over ``X`` ``(T, N, I)``: the outputs ``(T, N, H)`` and the final ``(h,)``."""
    W_ih, b_ih, W_hh, b_hh = weights
    return _with_final(_RNNSteps.apply(X, state[0], W_ih, _folded(b_ih, b_hh), W_hh, relu, reverse), reverse)


# --------------------------------------------------------------------- GRU
class _GRUSteps(torch.autograd.Function):
    """The GRU of :class:`divekit.nn.recurrent.GRU`, gates ``r, z, n``; ``b_hh`` stays apart (``r`` scales it)."""

    @staticmethod
    def forward(ctx: FunctionCtx, X, h0, W_ih, b_ih, W_hh, b_hh, reverse: bool):  # type: ignore[override]
        products, H = _Products(X, W_hh), h0.shape[-1]
        XW, Hs = products.project(X, W_ih, b_ih), X.new_empty(*X.shape[:2], H)  # (T, N, 3H), (T, N, H)
        W, h, saved = products.weight(W_hh), h0, []
        for x_rz, x_n, h_t in _steps(*XW.split(2 * H, dim=2), Hs, reverse=reverse):
            h_rz, h_n = products.mm(h, W, bias=b_hh).split(2 * H, dim=1)  # h W_hh^T + b_hh, (N, 2H) and (N, H)
            rz = torch.add(x_rz, h_rz).sigmoid_()
            r, z = _gates(rz, 2)
            n = _tanh_(torch.addcmul(x_n, r, h_n))
            h = torch.lerp(n, h, z, out=h_t)  # h' = n + z * (h - n)
            saved.append((rz, r, z, n, h_n))
        ctx.save_for_backward(X, h0, W_ih, W_hh, Hs)
        ctx.saved = saved[::-1] if reverse else saved  # in time order, one step's small tensors each
        ctx.has_bias, ctx.reverse = b_hh is not None, reverse
        return Hs

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs):  # type: ignore[override]
        X, h0, W_ih, W_hh, Hs = ctx.saved_tensors
        products, H = _Products(X, W_hh), h0.shape[-1]
        W_back = products.weight(W_hh.t())  # mm(x, W_back) = x @ W_hh
        dXW = _kept("dG", (*Hs.shape[:2], 3 * H), Hs)  # dL/d(x W_ih^T + b_ih) at every step
        dHW = _kept("dHW", dXW.shape, Hs)  # dL/d(h_{t-1} W_hh^T + b_hh): h_n enters multiplied by r
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
        needs_X, has_bias = ctx.needs_input_grad[0], ctx.has_bias
        dX, dW_ih, db_ih = products.input_grads(dXW, X, W_ih, needs_X=needs_X, has_bias=has_bias)
        db_hh = dHW.sum((0, 1)) if has_bias else None
        return dX, dh, dW_ih, db_ih, products.weight_grad(dHW, Hs, h0, ctx.reverse), db_hh, None


def gru_steps(X: torch.Tensor, state: State, weights: Weights, *, reverse: bool) -> Steps:
    """The fast GRU layer direction over ``X`` ``(T, N, I)``: the outputs ``(T, N, H)`` and the final ``(h,)``."""
    W_ih, b_ih, W_hh, b_hh = weights
    return _with_final(_GRUSteps.apply(X, state[0], W_ih, b_ih, W_hh, b_hh, reverse), reverse)


# -------------------------------------------------------------------- LSTM
class _LSTMSteps(torch.autograd.Function):
    """The LSTM of :class:`divekit.nn.recurrent.LSTM`, gates ``i, f, g, o``, ``bias = b_ih + b_hh``."""

    @staticmethod
    def forward(ctx: FunctionCtx, X, h0, c0, W_ih, bias, W_hh, reverse: bool):  # type: ignore[override]
        products = _Products(X, W_hh)
        XW, Hs = products.project(X, W_ih, bias), X.new_empty(*X.shape[:2], h0.shape[-1])  # (T, N, 4H), (T, N, H)
        W, h, c, saved = products.weight(W_hh), h0, c0, []
        for xw, h_t in _steps(XW, Hs, reverse=reverse):
            gates = products.mm(h, W, acc=xw)  # (N, 4H)
            i, f, g, o = _gates(gates, 4)
            g.mul_(_TWO)  # one sigmoid for the four gates: tanh(a) = 2 sigmoid(2a) - 1 for the candidate g
            gates.sigmoid_()
            g.mul_(_TWO).sub_(_ONE)
            c_previous, c = c, torch.addcmul(f * c, i, g)
            tanh_c = _tanh_(c.clone())
            h = torch.mul(o, tanh_c, out=h_t)
            saved.append((gates, c_previous, tanh_c))
        ctx.save_for_backward(X, h0, W_ih, W_hh, Hs)
        ctx.saved = saved[::-1] if reverse else saved  # in time order, one step's small tensors each
        ctx.has_bias, ctx.reverse = bias is not None, reverse
        return Hs, c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs, dc_last):  # type: ignore[override]
        X, h0, W_ih, W_hh, Hs = ctx.saved_tensors
        products = _Products(X, W_hh)
        W_back = products.weight(W_hh.t())  # mm(x, W_back) = x @ W_hh
        dG = _kept("dG", (*Hs.shape[:2], W_hh.shape[0]), Hs)  # dL/d(gate pre-activations) at every step
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
        dX, dW_ih, db = products.input_grads(dG, X, W_ih, needs_X=ctx.needs_input_grad[0], has_bias=ctx.has_bias)
        return dX, dh, dc, dW_ih, db, products.weight_grad(dG, Hs, h0, ctx.reverse), None


def lstm_steps(X: torch.Tensor, state: State, weights: Weights, *, reverse: bool) -> Steps:
    """The fast LSTM layer direction over ``X`` ``(T, N, I)``: the outputs ``(T, N, H)`` and the final ``(h, c)``."""
    W_ih, b_ih, W_hh, b_hh = weights
    Hs, c = _LSTMSteps.apply(X, state[0], state[1], W_ih, _folded(b_ih, b_hh), W_hh, reverse)
    return _with_final(Hs, reverse, c)
