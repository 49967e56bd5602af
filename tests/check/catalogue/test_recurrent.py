"""rnn, gru, lstm (the book's functions and nn twins) and one RNN step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from divekit.check.catalogue import book_rnn
from divekit.nn import recurrent
from tests.check.support import Case, case_id, verify


# ----------------------------------------------------------------------------- RNN
def rnn(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
        Y = torch.mm(H, W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


def rnn_stacked(inputs, state, params):
    """Outputs stacked (T, N, q) and the state as a bare tensor: accepted as the same thing."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    H = state[0]
    outputs = []
    for X in inputs:
        H = torch.tanh(X @ W_xh + H @ W_hh + b_h)
        outputs.append(H @ W_hq + b_q)
    return torch.stack(outputs), H


def rnn_relu(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.relu(X @ W_xh + H @ W_hh + b_h)
        outputs.append(H @ W_hq + b_q)
    return torch.cat(outputs, dim=0), (H,)


def rnn_not_carried(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H_new = torch.tanh(X @ W_xh + H @ W_hh + b_h)
        outputs.append(H_new @ W_hq + b_q)
    return torch.cat(outputs, dim=0), (H_new,)


def rnn_output_first(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        outputs.append(H @ W_hq + b_q)
        H = torch.tanh(X @ W_xh + H @ W_hh + b_h)
    return torch.cat(outputs, dim=0), (H,)


def rnn_keeps_state(inputs, state, params):
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.tanh(X @ W_xh + H @ W_hh + b_h)
        outputs.append(H @ W_hq + b_q)
    return torch.cat(outputs, dim=0), state


# ----------------------------------------------------------------------------- GRU
def gru(inputs, state, params):
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        Z = torch.sigmoid((X @ W_xz) + (H @ W_hz) + b_z)
        R = torch.sigmoid((X @ W_xr) + (H @ W_hr) + b_r)
        H_tilda = torch.tanh((X @ W_xh) + ((R * H) @ W_hh) + b_h)
        H = Z * H + (1 - Z) * H_tilda
        outputs.append(H @ W_hq + b_q)
    return torch.cat(outputs, dim=0), (H,)


def gru_with(*, reversed_update=False, reset_after=False, gates_swapped=False):
    def network(inputs, state, params):
        if gates_swapped:
            W_xr, W_hr, b_r, W_xz, W_hz, b_z, W_xh, W_hh, b_h, W_hq, b_q = params
        else:
            W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
        H, = state
        outputs = []
        for X in inputs:
            Z = torch.sigmoid(X @ W_xz + H @ W_hz + b_z)
            R = torch.sigmoid(X @ W_xr + H @ W_hr + b_r)
            H_tilda = torch.tanh(X @ W_xh + (R * (H @ W_hh) if reset_after else (R * H) @ W_hh) + b_h)
            H = (1 - Z) * H + Z * H_tilda if reversed_update else Z * H + (1 - Z) * H_tilda
            outputs.append(H @ W_hq + b_q)
        return torch.cat(outputs, dim=0), (H,)

    return network


gru_reversed_update = gru_with(reversed_update=True)
gru_reversed_update.__name__ = "gru_reversed_update"
gru_reset_after = gru_with(reset_after=True)
gru_reset_after.__name__ = "gru_reset_after"
gru_gates_swapped = gru_with(gates_swapped=True)
gru_gates_swapped.__name__ = "gru_gates_swapped"


# ----------------------------------------------------------------------------- LSTM
def lstm(inputs, state, params):
    [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q] = params
    (H, C) = state
    outputs = []
    for X in inputs:
        I = torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i)
        F = torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f)
        O = torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)
        C_tilda = torch.tanh((X @ W_xc) + (H @ W_hc) + b_c)
        C = F * C + I * C_tilda
        H = O * torch.tanh(C)
        outputs.append((H @ W_hq) + b_q)
    return torch.cat(outputs, dim=0), (H, C)


def lstm_with(*, no_tanh=False, swap_gates=False, sigmoid_candidate=False, state_swapped=False):
    def network(inputs, state, params):
        W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q = params
        H, C = state
        outputs = []
        for X in inputs:
            I = torch.sigmoid(X @ W_xi + H @ W_hi + b_i)
            F = torch.sigmoid(X @ W_xf + H @ W_hf + b_f)
            O = torch.sigmoid(X @ W_xo + H @ W_ho + b_o)
            C_tilda = (torch.sigmoid if sigmoid_candidate else torch.tanh)(X @ W_xc + H @ W_hc + b_c)
            C = I * C + F * C_tilda if swap_gates else F * C + I * C_tilda
            H = O * C if no_tanh else O * torch.tanh(C)
            outputs.append(H @ W_hq + b_q)
        return torch.cat(outputs, dim=0), (C, H) if state_swapped else (H, C)

    return network


lstm_no_tanh = lstm_with(no_tanh=True)
lstm_no_tanh.__name__ = "lstm_no_tanh"
lstm_gates_swapped = lstm_with(swap_gates=True)
lstm_gates_swapped.__name__ = "lstm_gates_swapped"
lstm_sigmoid_candidate = lstm_with(sigmoid_candidate=True)
lstm_sigmoid_candidate.__name__ = "lstm_sigmoid_candidate"
lstm_state_swapped = lstm_with(state_swapped=True)
lstm_state_swapped.__name__ = "lstm_state_swapped"


# ----------------------------------------------------------------------------- one step
def rnn_cell(X, H, W_xh, W_hh, b_h):
    return torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)


def rnn_cell_params(X, H, params):
    W_xh, W_hh, b_h = params
    return torch.tanh(X @ W_xh + H @ W_hh + b_h)


def rnn_cell_transposed(X, H, W_xh, W_hh, b_h):
    return torch.tanh(X @ W_xh + H @ W_hh.T + b_h)


def rnn_cell_no_bias(X, H, W_xh, W_hh, b_h):
    return torch.tanh(X @ W_xh + H @ W_hh)


def rnn_cell_linear(X, H, W_xh, W_hh, b_h):
    return X @ W_xh + H @ W_hh + b_h


class RNNCell(nn.Module):
    """nn.RNNCell's layout, written out."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.randn(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, X, H):
        return torch.tanh(X @ self.weight_ih.T + self.bias_ih + H @ self.weight_hh.T + self.bias_hh)


CASES = [
    Case("rnn", recurrent.RNN),
    Case("rnn", nn.RNN),
    Case("rnn", rnn),
    Case("rnn", rnn_stacked),
    Case("rnn", rnn_relu, "uses tanh", "ReLU instead of tanh"),
    Case("rnn", rnn_not_carried, "not carried", "H never updated"),
    Case("rnn", rnn_output_first, "previous hidden state", "Y from the old H"),
    Case("rnn", rnn_keeps_state, "initial one", "returns the initial state"),
    Case("gru", recurrent.GRU),
    Case("gru", gru),
    Case("gru", gru_reversed_update, "update gate is reversed", "H = (1 - Z) H + Z H~"),
    Case("gru", gru_reset_after, "after W_hh", "R * (H @ W_hh), PyTorch's form"),
    Case("gru", gru_gates_swapped, "gates' parameters are swapped", "unpacks r before z"),
    Case("lstm", recurrent.LSTM),
    Case("lstm", lstm),
    Case("lstm", lstm_no_tanh, "goes through tanh", "H = O * C"),
    Case("lstm", lstm_gates_swapped, "forget and input gates are swapped", "C = I C + F C~"),
    Case("lstm", lstm_sigmoid_candidate, "candidate memory uses tanh", "sigmoid candidate"),
    Case("lstm", lstm_state_swapped, "(H, C), in that order", "returns (C, H)"),
    Case("rnn-cell", nn.RNNCell),
    Case("rnn-cell", RNNCell),
    Case("rnn-cell", rnn_cell),
    Case("rnn-cell", rnn_cell_params),
    Case("rnn-cell", rnn_cell_transposed, "W_hh is transposed", "H @ W_hh.T"),
    Case("rnn-cell", rnn_cell_no_bias, "bias b_h is missing", "no bias"),
    Case("rnn-cell", rnn_cell_linear, "goes through tanh", "no tanh"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_book_references_equal_the_learner_style_loops(cell):
    """The references run divekit's nn twins with the book's weights; the book's loop gives the same, gradients too."""
    torch.manual_seed(1)
    T, N, V, h, q = 3, 2, 4, 5, 3
    params = [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in book_rnn.param_shapes(cell, V, h, q)]
    state = tuple(torch.randn(N, h, dtype=torch.float64) for _ in range(2 if cell == "lstm" else 1))
    inputs = torch.randn(T, N, V, dtype=torch.float64)
    ours = book_rnn.REFERENCES[cell](inputs, state, params)
    loop = {"rnn": rnn, "lstm": lstm}[cell](inputs, state, params)
    for a, b in zip((ours[0], *ours[1]), (loop[0], *loop[1])):
        torch.testing.assert_close(a, b)
    grads = torch.autograd.grad(ours[0].sum(), params)
    torch.testing.assert_close(grads, torch.autograd.grad(loop[0].sum(), params))


def test_book_gru_with_the_reset_gate_saturated_open_is_pytorchs_gru():
    """With R = 1 the book's and PyTorch's GRU agree, which pins the gate order and the blend."""
    torch.manual_seed(2)
    V, h = 3, 4
    params = [torch.randn(s, dtype=torch.float64) for s in book_rnn.param_shapes("gru", V, h, h)]
    params[5] = torch.full((h,), 1e3, dtype=torch.float64)  # b_r: the reset gate is 1
    X, H = torch.randn(1, 2, V, dtype=torch.float64), torch.randn(2, h, dtype=torch.float64)
    layer = nn.GRU(V, h).double()
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h = params[:9]
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.cat([W_xr, W_xz, W_xh], 1).T)
        layer.weight_hh_l0.copy_(torch.cat([W_hr, W_hz, W_hh], 1).T)
        layer.bias_ih_l0.copy_(torch.cat([b_r, b_z, b_h]))
        layer.bias_hh_l0.zero_()
    _, (ours,) = book_rnn.gru(X, (H,), params)
    torch.testing.assert_close(ours, layer(X, H[None])[1][0])
