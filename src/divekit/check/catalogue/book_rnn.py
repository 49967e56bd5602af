"""The book's from-scratch recurrent functions, ``rnn/gru/lstm(inputs, state, params)``, as references.

The book writes each network as a function of time-major ``inputs`` ``(T, N,
V)``, a state tuple ``(H,)`` (``(H, C)`` for the LSTM) and a flat list of
parameters, and returns the outputs of every step concatenated along the
rows, ``(T * N, q)``, with the final state.

- the RNN and the LSTM are computed by divekit's twins of ``nn.RNN`` and
  ``nn.LSTM`` (proven equal to PyTorch's), given the book's parameters in
  PyTorch's layout through ``torch.func.functional_call`` so that gradients
  reach the book's tensors;
- the book's GRU applies the reset gate *before* ``W_hh``
  (``tanh(X W_xh + (R * H) W_hh + b_h)``, Cho et al., 2014) where PyTorch's
  applies it after, so it is written out here (:func:`gru_step`).

Parameter order, as in the book:
``rnn``: ``W_xh, W_hh, b_h, W_hq, b_q``;
``gru``: ``W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q``;
``lstm``: ``W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.func import functional_call

from divekit.nn.recurrent import LSTM, RNN

Tensor = torch.Tensor
State = tuple[Tensor, ...]

PARAM_NAMES = {
    "rnn": ("W_xh", "W_hh", "b_h", "W_hq", "b_q"),
    "gru": ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h", "W_hq", "b_q"),
    "lstm": ("W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f", "W_xo", "W_ho", "b_o", "W_xc", "W_hc", "b_c",
             "W_hq", "b_q"),
}  # fmt: skip


def param_shapes(cell: str, vocab: int, hidden: int, outputs: int) -> list[tuple[int, ...]]:
    """The shape of each of the book's parameters, in order."""
    gates = (len(PARAM_NAMES[cell]) - 2) // 3
    return [(vocab, hidden), (hidden, hidden), (hidden,)] * gates + [(hidden, outputs), (outputs,)]


def _twin(layer: torch.nn.Module, W_ih: Tensor, W_hh: Tensor, b: Tensor, inputs: Tensor, state: State):
    """Run a divekit twin with PyTorch-layout weights; the hidden bias is zero (the book has one bias)."""
    weights = {"weight_ih_l0": W_ih.t(), "weight_hh_l0": W_hh.t(), "bias_ih_l0": b, "bias_hh_l0": torch.zeros_like(b)}
    hx = tuple(s.unsqueeze(0) for s in state)  # (N, H) -> (1, N, H)
    return functional_call(layer, weights, (inputs, hx[0] if len(hx) == 1 else hx))


def rnn(inputs: Tensor, state: State, params: Sequence[Tensor]) -> tuple[Tensor, State]:
    """The book's ``rnn``: ``H = tanh(X W_xh + H W_hh + b_h)``, ``Y = H W_hq + b_q`` at every step."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    layer = RNN(W_xh.shape[0], W_xh.shape[1]).to(inputs.dtype)
    H_all, H = _twin(layer, W_xh, W_hh, b_h, inputs, state)  # (T, N, h), (1, N, h)
    return (H_all @ W_hq + b_q).reshape(-1, W_hq.shape[1]), (H[0],)


def lstm(inputs: Tensor, state: State, params: Sequence[Tensor]) -> tuple[Tensor, State]:
    """The book's ``lstm``: gates i, f, o and candidate c; ``C = F C + I C~``, ``H = O tanh(C)``."""
    W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
    # PyTorch stacks the gates as i, f, g (the candidate), o
    W_ih = torch.cat([W_xi, W_xf, W_xc, W_xo], dim=1)  # (V, 4h)
    W_hh = torch.cat([W_hi, W_hf, W_hc, W_ho], dim=1)  # (h, 4h)
    b = torch.cat([b_i, b_f, b_c, b_o])
    layer = LSTM(W_xi.shape[0], W_xi.shape[1]).to(inputs.dtype)
    H_all, (H, C) = _twin(layer, W_ih, W_hh, b, inputs, state)
    return (H_all @ W_hq + b_q).reshape(-1, W_hq.shape[1]), (H[0], C[0])


def gru_step(X: Tensor, state: State, params: Sequence[Tensor], *, reset_after: bool = False) -> State:
    """One step of the book's GRU; ``reset_after`` applies R after ``W_hh`` as PyTorch does."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h = params[:9]
    (H,) = state
    Z = torch.sigmoid(X @ W_xz + H @ W_hz + b_z)  # update gate
    R = torch.sigmoid(X @ W_xr + H @ W_hr + b_r)  # reset gate
    recurrent = R * (H @ W_hh) if reset_after else (R * H) @ W_hh
    H_tilda = torch.tanh(X @ W_xh + recurrent + b_h)
    return (Z * H + (1 - Z) * H_tilda,)


def run_steps(step: Callable[[Tensor, State], State], inputs: Tensor, state: State,
              W_hq: Tensor, b_q: Tensor) -> tuple[Tensor, State]:  # fmt: skip
    """The book's loop: a new state per step, an output from it, the outputs concatenated along rows."""
    outputs = []
    for X in inputs:  # X: (N, V)
        state = step(X, state)
        outputs.append(state[0] @ W_hq + b_q)
    return torch.cat(outputs, dim=0), state


def gru(inputs: Tensor, state: State, params: Sequence[Tensor]) -> tuple[Tensor, State]:
    """The book's ``gru`` (reset gate before ``W_hh``)."""
    return run_steps(lambda X, s: gru_step(X, s, params), inputs, state, params[-2], params[-1])


REFERENCES = {"rnn": rnn, "gru": gru, "lstm": lstm}
