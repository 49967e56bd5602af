"""Recurrent layers from scratch (notes §6.4 RNN, §6.5 GRU, §6.6 LSTM, §6.7 深层RNN, §6.8 双向循环网络).

``RNN``, ``GRU`` and ``LSTM`` are drop-in twins of ``torch.nn.RNN/GRU/LSTM``:
the same constructor arguments, the same parameter names and shapes
(``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, with the
``_reverse`` suffix for the backward direction), the same gate order, the same
initialisation and the same input and state shapes. A ``state_dict`` therefore
loads across in both directions, and tests compare them in float64.

Like PyTorch's layers they are time-major, ``(T, N, input_size)``, unless
``batch_first=True``; a 2-D input ``(T, input_size)`` is one unbatched sequence.

Speed without obscurity: the input projection ``X W_ih^T + b_ih`` of every
time step is one matrix product before the time loop, so the loop itself only
multiplies the ``(N, H)`` hidden state by ``W_hh``.

``fast=True`` runs each layer direction through :mod:`divekit.nn.recurrent_fast`
instead (one autograd function per direction, a hand-written backward through
time, the same values); the readable ``_step`` below stays the reference, and
is also what runs under ``torch.autocast``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from divekit.nn import recurrent_fast

State = tuple[torch.Tensor, ...]  # (h,) for RNN and GRU, (h, c) for LSTM; each (N, H)


class _Recurrent(nn.Module):
    """Layers, directions, parameters and shapes shared by the three cells.

    Subclasses set ``num_gates`` and ``state_size`` and implement :meth:`_step`
    (the readable step) and :meth:`_fast_steps` (the ``fast=True`` loop).
    """

    num_gates = 1
    state_size = 1  # tensors in the state: 1 (h) or 2 (h, c)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        fast: bool = False,
    ) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(f"sizes must be positive: input_size={input_size}, hidden_size={hidden_size}, "
                             f"num_layers={num_layers}")  # fmt: skip
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.fast = fast
        gate_size = self.num_gates * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes:
                name = f"l{layer}{suffix}"
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(gate_size, layer_input)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(gate_size, hidden_size)))
                if bias:
                    self.register_parameter(f"bias_ih_{name}", nn.Parameter(torch.empty(gate_size)))
                    self.register_parameter(f"bias_hh_{name}", nn.Parameter(torch.empty(gate_size)))
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def reset_parameters(self) -> None:
        """Every weight and bias from U(-1/sqrt(H), 1/sqrt(H)), as PyTorch initialises them."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False),
                              ("fast", False)):  # fmt: skip
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text

    # ------------------------------------------------------------ forward
    def forward(self, input: torch.Tensor, hx: torch.Tensor | State | None = None):
        """Run every layer and direction over the sequence.

        Args:
            input: ``(T, N, input_size)`` (``(N, T, input_size)`` if
                ``batch_first``), or ``(T, input_size)`` unbatched.
            hx: the initial state, ``(num_layers * num_directions, N, H)``
                (LSTM: a tuple ``(h_0, c_0)``); zeros if ``None``.

        Returns:
            ``output`` ``(T, N, num_directions * H)`` (batch-first if asked):
            the last layer's hidden state at every step; and the final state
            of every layer and direction, shaped like ``hx``.
        """
        batched = input.dim() == 3
        if input.dim() not in (2, 3):
            raise ValueError(f"expected a 2-D or 3-D input, got shape {tuple(input.shape)}")
        X = input if batched else input.unsqueeze(1)  # (T, 1, I) when unbatched
        if batched and self.batch_first:
            X = X.transpose(0, 1)  # (N, T, I) -> (T, N, I)
        if X.shape[-1] != self.input_size:
            raise ValueError(f"expected input size {self.input_size}, got {X.shape[-1]}")
        states = self._initial_states(hx, batch=X.shape[1], like=X, batched=batched)
        finals: list[State] = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout and self.training:
                X = F.dropout(X, self.dropout, training=True)
            outputs = []
            for direction, suffix in enumerate(self._suffixes):
                index = layer * self.num_directions + direction
                Y, final = self._run_direction(X, states[index], f"l{layer}{suffix}", reverse=direction == 1)
                outputs.append(Y)
                finals.append(final)
            X = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (T, N, D * H)
        return self._format_outputs(X, finals, batched=batched)

    def _initial_states(self, hx: torch.Tensor | State | None, *, batch: int, like: torch.Tensor,
                        batched: bool) -> list[State]:  # fmt: skip
        """The initial state as one ``State`` per (layer, direction)."""
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if hx is None:
            zeros = like.new_zeros(expected)
            return [tuple(zeros[i] for _ in range(self.state_size)) for i in range(expected[0])]
        parts = (hx,) if isinstance(hx, torch.Tensor) else tuple(hx)
        if len(parts) != self.state_size:
            raise ValueError(f"{type(self).__name__} expects a state of {self.state_size} tensor(s), got {len(parts)}")
        if not batched:
            parts = tuple(p.unsqueeze(1) for p in parts)  # (L*D, H) -> (L*D, 1, H)
        for part in parts:
            if tuple(part.shape) != expected:
                raise ValueError(f"expected hidden state of shape {expected}, got {tuple(part.shape)}")
        return [tuple(p[i] for p in parts) for i in range(expected[0])]

    def _format_outputs(self, Y: torch.Tensor, finals: list[State], *, batched: bool):
        stacked = tuple(torch.stack([f[k] for f in finals]) for k in range(self.state_size))  # (L*D, N, H) each
        if not batched:
            Y = Y.squeeze(1)
            stacked = tuple(s.squeeze(1) for s in stacked)
        elif self.batch_first:
            Y = Y.transpose(0, 1)  # (T, N, D*H) -> (N, T, D*H)
        return Y, stacked[0] if self.state_size == 1 else stacked

    def _run_direction(self, X: torch.Tensor, state: State, name: str, *, reverse: bool) -> tuple[torch.Tensor, State]:
        """One layer in one direction over ``X`` ``(T, N, I)``; returns ``(T, N, H)`` and the final state."""
        W_ih, W_hh = getattr(self, f"weight_ih_{name}"), getattr(self, f"weight_hh_{name}")
        b_ih = getattr(self, f"bias_ih_{name}") if self.bias else None
        b_hh = getattr(self, f"bias_hh_{name}") if self.bias else None
        if self.fast and not torch.is_autocast_enabled(X.device.type):  # the fast path keeps X's dtype throughout
            return self._fast_steps(X, state, (W_ih, b_ih, W_hh, b_hh), reverse=reverse)
        XW, b_hh = self._project_inputs(X, W_ih, b_ih, b_hh)  # (T, N, G*H), all steps at once
        # unbind, not XW[t]: the backward of T separate indexings would write T full-size zero tensors
        steps = XW.unbind(0)
        outputs = []
        for xw in reversed(steps) if reverse else steps:
            state = self._step(xw, state, W_hh, b_hh)
            outputs.append(state[0])
        if reverse:
            outputs.reverse()
        return torch.stack(outputs), state

    def _project_inputs(self, X, W_ih, b_ih, b_hh):
        """``X W_ih^T + b_ih + b_hh`` for every step; returns it and the bias left for the loop (none)."""
        bias = b_ih + b_hh if b_ih is not None else None
        return F.linear(X, W_ih, bias), None

    def _step(self, xw: torch.Tensor, state: State, W_hh: torch.Tensor, b_hh: torch.Tensor | None) -> State:
        """One time step: the new state from the projected input ``xw`` ``(N, G*H)``."""
        raise NotImplementedError

    def _fast_steps(self, X: torch.Tensor, state: State, weights: recurrent_fast.Weights, *,
                    reverse: bool) -> tuple[torch.Tensor, State]:  # fmt: skip
        """The projection and every time step through :mod:`divekit.nn.recurrent_fast`; returns as the loop above."""
        raise NotImplementedError


class RNN(_Recurrent):
    """Elman RNN (notes §6.4): ``H_t = phi(X_t W_ih^T + b_ih + H_{t-1} W_hh^T + b_hh)``.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout,
        bidirectional: as in ``torch.nn.RNN``.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        fast: run the layer through :mod:`divekit.nn.recurrent_fast` (same values, faster).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, fast: bool = False) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; use 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, fast=fast)

    def _step(self, xw, state, W_hh, b_hh):
        pre = torch.addmm(xw, state[0], W_hh.t())  # (N, H)
        return (torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre),)

    def _fast_steps(self, X, state, weights, *, reverse):
        return recurrent_fast.rnn_steps(X, state, weights, relu=self.nonlinearity == "relu", reverse=reverse)


class GRU(_Recurrent):
    """Gated recurrent unit (notes §6.5), PyTorch's gate order ``r, z, n``.

    ``r = sigma(W_ir x + b_ir + W_hr h + b_hr)`` (reset),
    ``z = sigma(W_iz x + b_iz + W_hz h + b_hz)`` (update),
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.
    The hidden bias stays inside the loop because ``r`` multiplies ``b_hn``.
    """

    num_gates = 3

    def _project_inputs(self, X, W_ih, b_ih, b_hh):
        return F.linear(X, W_ih, b_ih), b_hh

    def _step(self, xw, state, W_hh, b_hh):
        (h,) = state
        hw = F.linear(h, W_hh, b_hh)  # (N, 3H)
        x_r, x_z, x_n = xw.chunk(3, dim=1)
        h_r, h_z, h_n = hw.chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (n + z * (h - n),)  # = (1 - z) * n + z * h

    def _fast_steps(self, X, state, weights, *, reverse):
        return recurrent_fast.gru_steps(X, state, weights, reverse=reverse)


class LSTM(_Recurrent):
    """Long short-term memory (notes §6.6), PyTorch's gate order ``i, f, g, o``.

    ``c' = f * c + i * g`` with input gate ``i``, forget gate ``f`` (sigmoids)
    and candidate ``g`` (tanh); ``h' = o * tanh(c')`` with output gate ``o``.
    The state is the pair ``(h, c)``.
    """

    num_gates = 4
    state_size = 2

    def _step(self, xw, state, W_hh, b_hh):
        h, c = state
        gates = torch.addmm(xw, h, W_hh.t())  # (N, 4H)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _fast_steps(self, X, state, weights, *, reverse):
        return recurrent_fast.lstm_steps(X, state, weights, reverse=reverse)
