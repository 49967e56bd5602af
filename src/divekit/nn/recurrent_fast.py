"""The opt-in fast path of the scratch recurrent layers (``fast=True`` in :mod:`divekit.nn.recurrent`).

The readable layers let autograd record every operation of every time step,
then walk them back one by one. Here each layer direction is one
``torch.autograd.Function`` with a hand-written backward (notes §6.5
通过时间反向传播, BPTT), computing the same values:

- the forward loop writes every step into tensors allocated once for the
  whole sequence (``out=`` and in-place operations, no autograd records);
- the backward loop carries only ``dL/dh`` (and ``dL/dc``) back in time, one
  ``(N, G*H) @ (G*H, H)`` product per step, and stores the gate gradients of
  every step; the weight gradient ``dL/dW_hh = sum_t dG_t^T h_{t-1}`` is then
  **one** matrix product over all steps instead of ``T`` small ones, each
  added into the gradient;
- ``tanh(a)`` is computed as ``2 sigmoid(2a) - 1``: the same function, and
  PyTorch's CPU ``tanh`` is several times slower than its ``sigmoid``;
- on the CPU in float32, the matrix products go to oneDNN (the CPU kernel
  library inside PyTorch) when it is there: on CPUs where MKL's GEMM does not
  use AVX-512 (AMD) it runs them up to twice as fast. Other devices and
  dtypes use ``torch.addmm``. :data:`USE_ONEDNN` switches it off.

The layers' parameters, initial state and input projection stay those of
:mod:`divekit.nn.recurrent`; tests prove outputs, final states and gradients
equal to the readable path. The backward is ``once_differentiable``: no
double backward through the fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

State = tuple[torch.Tensor, ...]
Steps = tuple[torch.Tensor, State]  # the outputs (T, N, H) and the final state
MatMul = Callable[..., torch.Tensor]

USE_ONEDNN = True  # False: always torch.addmm (to measure what oneDNN adds, or to rule it out)
ONEDNN_MIN_FLOPS = 4e6  # smaller step products stay on torch.addmm (see _matmul_for)


# ------------------------------------------------------------------ kernels
def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """``tanh`` in place, as ``2 sigmoid(2x) - 1`` (the same function, a faster kernel on the CPU)."""
    return x.mul_(2).sigmoid_().mul_(2).sub_(1)


@cache
def _onednn_linear() -> Callable[..., torch.Tensor] | None:
    """oneDNN's ``x @ W^T`` if this PyTorch has it and it agrees with ``torch.mm`` on a probe, else ``None``."""
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return None
    try:
        x, W = torch.randn(3, 5), torch.randn(4, 5)
        ok = torch.allclose(op(x, W.t().t(), None, "none", [], ""), x @ W.t(), atol=1e-5)
    except (RuntimeError, TypeError):  # an op whose signature changed, or a build without the kernel
        return None
    return (lambda x, W: op(x, W, None, "none", [], "")) if ok else None


def _matmul_for(like: torch.Tensor, W_hh: torch.Tensor) -> MatMul:
    """``mm(x, W, acc=None, out=...)``: ``acc + x @ W^T`` into ``out``, by the best kernel for steps like ``like``.

    oneDNN costs about 12 us more per call than ``addmm`` and wins from about
    4 MFLOP per product (measured on 2 AMD EPYC cores: 1.6x at batch 32 and
    hidden 256 with 3 gates, 0.3x at hidden 16), so small steps keep ``addmm``.
    """
    big = 2 * like.shape[1] * W_hh.numel() >= ONEDNN_MIN_FLOPS  # one step's product: (N, H) @ (H, G*H)
    eligible = USE_ONEDNN and big and like.device.type == "cpu" and like.dtype == torch.float32
    linear = _onednn_linear() if eligible else None
    if linear is None:
        def mm(x, W, *, acc=None, out):  # fmt: skip
            return torch.mm(x, W.t(), out=out) if acc is None else torch.addmm(acc, x, W.t(), out=out)
    else:
        def mm(x, W, *, acc=None, out):  # fmt: skip
            return out.copy_(linear(x, W)) if acc is None else torch.add(acc, linear(x, W), out=out)
    return mm


def _steps(*sequences: torch.Tensor, reverse: bool) -> list[tuple[torch.Tensor, ...]]:
    """Per-step views of ``(T, ...)`` tensors, one ``unbind`` each, in the order the loop visits the steps.

    Made once before the loop: indexing and slicing inside it would cost a
    few microseconds per view, as much as the small element-wise steps.
    """
    steps = list(zip(*(sequence.unbind(0) for sequence in sequences)))
    return steps[::-1] if reverse else steps


def _previous(Hs: torch.Tensor, h0: torch.Tensor, reverse: bool) -> torch.Tensor:
    """The state each step started from, ``(T, N, H)``: ``h_{t-1}`` (``h_{t+1}`` when reading backwards)."""
    return torch.cat([Hs[1:], h0[None]]) if reverse else torch.cat([h0[None], Hs[:-1]])


def _weight_grad(mm: MatMul, dG: torch.Tensor, previous: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``sum_t dG_t^T h_{t-1}`` as one ``(G*H, T*N) @ (T*N, H)`` product."""
    return mm(dG.flatten(0, 1).t(), previous.flatten(0, 1).t(), out=torch.empty_like(W))


def _with_final(Hs: torch.Tensor, reverse: bool, *more: torch.Tensor) -> Steps:
    """The outputs and the final state: ``h`` of the last step read (the first one when reading backwards)."""
    return Hs, (Hs[0 if reverse else -1], *more)


def _gates(X: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
    """The ``count`` gate blocks of ``(T, N, count*H)`` as ``(T, N, H)`` views."""
    return X.chunk(count, dim=2)


# --------------------------------------------------------------------- RNN
class _RNNSteps(torch.autograd.Function):
    """``H_t = phi(XW_t + H_{t-1} W_hh^T)`` for every step; ``XW`` holds the input projection and both biases."""

    @staticmethod
    def forward(ctx: FunctionCtx, XW, h0, W_hh, relu: bool, reverse: bool):  # type: ignore[override]
        mm, Hs = _matmul_for(XW, W_hh), torch.empty_like(XW)  # (T, N, H)
        h = h0
        for xw, h_t in _steps(XW, Hs, reverse=reverse):
            h = mm(h, W_hh, acc=xw, out=h_t)
            h = h.relu_() if relu else _tanh_(h)
        ctx.save_for_backward(Hs, h0, W_hh)
        ctx.relu, ctx.reverse = relu, reverse
        return Hs

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs):  # type: ignore[override]
        Hs, h0, W_hh = ctx.saved_tensors
        mm, W_back = _matmul_for(Hs, W_hh), W_hh.t().contiguous()  # mm(x, W_back) = x @ W_hh
        slope = (Hs > 0).to(Hs.dtype) if ctx.relu else 1 - Hs * Hs  # phi' from phi's output
        dP = torch.empty_like(Hs)  # dL/d(pre-activation) at every step
        dh = torch.zeros_like(h0)  # dL/dh_{t-1}, carried back in time
        for dy, s, dp in _steps(dHs, slope, dP, reverse=not ctx.reverse):
            torch.add(dy, dh, out=dp).mul_(s)
            mm(dp, W_back, out=dh)
        return dP, dh, _weight_grad(mm, dP, _previous(Hs, h0, ctx.reverse), W_hh), None, None


def rnn_steps(XW: torch.Tensor, state: State, W_hh: torch.Tensor, *, relu: bool, reverse: bool) -> Steps:
    """The fast RNN loop over ``XW`` ``(T, N, H)``: the outputs ``(T, N, H)`` and the final ``(h,)``."""
    return _with_final(_RNNSteps.apply(XW, state[0], W_hh, relu, reverse), reverse)


# --------------------------------------------------------------------- GRU
class _GRUSteps(torch.autograd.Function):
    """The GRU of :class:`divekit.nn.recurrent.GRU`; ``XW`` holds ``X W_ih^T + b_ih``, gates ``r, z, n``."""

    @staticmethod
    def forward(ctx: FunctionCtx, XW, h0, W_hh, b_hh, reverse: bool):  # type: ignore[override]
        mm, (T, N, H) = _matmul_for(XW, W_hh), (*XW.shape[:2], h0.shape[-1])
        HW = torch.empty_like(XW)  # (T, N, 3H): h_{t-1} W_hh^T + b_hh
        RZ = XW.new_empty(T, N, 2 * H)  # the gates r and z
        Ns, Hs = XW.new_empty(T, N, H), XW.new_empty(T, N, H)  # the candidate n and the output h
        bias = None if b_hh is None else b_hh.expand(N, 3 * H)
        (x_rz, x_n), (h_rz, h_n) = XW.split(2 * H, dim=2), HW.split(2 * H, dim=2)
        h = h0
        steps = _steps(x_rz, x_n, HW, h_rz, h_n, RZ, *_gates(RZ, 2), Ns, Hs, reverse=reverse)
        for xrz_t, xn_t, hw_t, hrz_t, hn_t, rz_t, r_t, z_t, n_t, h_t in steps:
            mm(h, W_hh, acc=bias, out=hw_t)
            torch.add(xrz_t, hrz_t, out=rz_t).sigmoid_()
            n = _tanh_(torch.addcmul(xn_t, r_t, hn_t, out=n_t))
            h = torch.sub(h, n, out=h_t).mul_(z_t).add_(n)  # h' = n + z * (h - n)
        ctx.save_for_backward(HW, RZ, Ns, Hs, h0, W_hh)
        ctx.has_bias, ctx.reverse = b_hh is not None, reverse
        return Hs

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs):  # type: ignore[override]
        HW, RZ, Ns, Hs, h0, W_hh = ctx.saved_tensors
        mm, W_back, (T, N, H) = _matmul_for(Hs, W_hh), W_hh.t().contiguous(), Hs.shape
        previous, (r, z), h_n = _previous(Hs, h0, ctx.reverse), _gates(RZ, 2), _gates(HW, 3)[2]
        # every gate gradient is dL/dh_t times a factor known from the forward pass: the factors of all steps first
        through_n = (1 - z) * (1 - Ns * Ns)  # d h_t / d(x_n + r * h_n)
        to_x = torch.cat([through_n * h_n * r * (1 - r), (previous - Ns) * z * (1 - z), through_n], dim=2)
        to_h = torch.cat([to_x[..., : 2 * H], through_n * r], dim=2)  # h_n is multiplied by r
        dH = torch.empty_like(Hs)  # dL/dh_t at every step
        dHW = torch.empty_like(HW)  # dL/d(h_{t-1} W_hh^T + b_hh), (T, N, 3H)
        dh, direct = torch.zeros_like(h0), torch.empty_like(h0)  # dL/dh_{t-1}: through W_hh, and through z
        steps = _steps(dHs, dH, dH[:, :, None], z, to_h.unflatten(2, (3, H)), dHW.unflatten(2, (3, H)), dHW,
                       reverse=not ctx.reverse)  # fmt: skip
        for dy, g, g3, z_t, to_h_t, dhw3, dhw in steps:
            torch.add(dy, dh, out=g)
            torch.mul(g3, to_h_t, out=dhw3)
            mm(dhw, W_back, acc=torch.mul(g, z_t, out=direct), out=dh)
        dXW = (dH[:, :, None] * to_x.unflatten(2, (3, H))).flatten(2)
        db_hh = dHW.sum((0, 1)) if ctx.has_bias else None
        return dXW, dh, _weight_grad(mm, dHW, previous, W_hh), db_hh, None


def gru_steps(XW: torch.Tensor, state: State, W_hh: torch.Tensor, b_hh: torch.Tensor | None, *,
              reverse: bool) -> Steps:  # fmt: skip
    """The fast GRU loop over ``XW`` ``(T, N, 3H)``: the outputs ``(T, N, H)`` and the final ``(h,)``."""
    return _with_final(_GRUSteps.apply(XW, state[0], W_hh, b_hh, reverse), reverse)


# -------------------------------------------------------------------- LSTM
class _LSTMSteps(torch.autograd.Function):
    """The LSTM of :class:`divekit.nn.recurrent.LSTM`; ``XW`` holds the input projection and both biases."""

    @staticmethod
    def forward(ctx: FunctionCtx, XW, h0, c0, W_hh, reverse: bool):  # type: ignore[override]
        mm, (T, N, H) = _matmul_for(XW, W_hh), (*XW.shape[:2], h0.shape[-1])
        G = torch.empty_like(XW)  # (T, N, 4H): the activated gates i, f, g, o
        Cs, TCs, Hs = (XW.new_empty(T, N, H) for _ in range(3))  # c_t, tanh(c_t), h_t
        h, c = h0, c0
        for xw, gates, i, f, g, o, c_t, tc_t, h_t in _steps(XW, G, *_gates(G, 4), Cs, TCs, Hs, reverse=reverse):
            mm(h, W_hh, acc=xw, out=gates)
            g.mul_(2)  # one sigmoid for the four gates: tanh(a) = 2 sigmoid(2a) - 1 for the candidate g
            gates.sigmoid_()
            g.mul_(2).sub_(1)
            c = torch.mul(f, c, out=c_t).addcmul_(i, g)
            h = torch.mul(o, _tanh_(tc_t.copy_(c)), out=h_t)
        ctx.save_for_backward(G, Cs, TCs, Hs, h0, c0, W_hh)
        ctx.reverse = reverse
        return Hs, c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dHs, dc_last):  # type: ignore[override]
        G, Cs, TCs, Hs, h0, c0, W_hh = ctx.saved_tensors
        mm, W_back, H, reverse = _matmul_for(G, W_hh), W_hh.t().contiguous(), h0.shape[-1], ctx.reverse
        i, f, g, o = _gates(G, 4)
        # the gate gradients are dL/dc_t (i, f, g) or dL/dh_t (o) times factors known from the forward pass
        to_c = o * (1 - TCs * TCs)  # d h_t / d c_t
        from_c = torch.stack([g * i * (1 - i), _previous(Cs, c0, reverse) * f * (1 - f), i * (1 - g * g)], dim=2)
        from_h = TCs * o * (1 - o)
        dG = torch.empty_like(G)  # dL/d(gate pre-activations), (T, N, 4H)
        dG4 = dG.unflatten(2, (4, H))  # (T, N, 4, H)
        dh, dc, gh = torch.zeros_like(h0), dc_last.clone(), torch.empty_like(h0)  # dL/dh_{t-1}, dL/dc_t, dL/dh_t
        dc3 = dc[:, None]  # (N, 1, H), a view of dc
        steps = _steps(dHs, to_c, from_c, from_h, f, dG, dG4[:, :, :3], dG4[:, :, 3], reverse=not reverse)
        for dy, to_c_t, from_c_t, from_h_t, f_t, dg, dg_ifg, dg_o in steps:
            torch.add(dy, dh, out=gh)
            dc.addcmul_(gh, to_c_t)
            torch.mul(dc3, from_c_t, out=dg_ifg)
            torch.mul(gh, from_h_t, out=dg_o)
            dc.mul_(f_t)  # dL/dc_{t-1}
            mm(dg, W_back, out=dh)
        return dG, dh, dc, _weight_grad(mm, dG, _previous(Hs, h0, reverse), W_hh), None

def lstm_steps(XW: torch.Tensor, state: State, W_hh: torch.Tensor, *, reverse: bool) -> Steps:
    """The fast LSTM loop over ``XW`` ``(T, N, 4H)``: the outputs ``(T, N, H)`` and the final ``(h, c)``."""
    Hs, c = _LSTMSteps.apply(XW, state[0], state[1], W_hh, reverse)
    return _with_final(Hs, reverse, c)
