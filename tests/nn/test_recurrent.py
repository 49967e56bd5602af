"""The scratch RNN, GRU and LSTM equal torch.nn's layers: outputs, final states and gradients, in float64."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from divekit.nn import recurrent

PAIRS = {"RNN": (recurrent.RNN, nn.RNN), "GRU": (recurrent.GRU, nn.GRU), "LSTM": (recurrent.LSTM, nn.LSTM)}
T, N, I, H = 5, 3, 4, 6


def _twins(kind: str, **options):
    ours_cls, torch_cls = PAIRS[kind]
    reference = torch_cls(I, H, **options).double()
    ours = ours_cls(I, H, **options).double()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def _state(kind: str, layers: int, directions: int, batch: int = N):
    shape = (layers * directions, batch, H)
    h = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    if kind != "LSTM":
        return h
    return h, torch.randn(shape, dtype=torch.float64, requires_grad=True)


def _leaves(state):
    return [] if state is None else list(state) if isinstance(state, tuple) else [state]


def _run(layer, X, state):
    Y, final = layer(X, state)
    finals = final if isinstance(final, tuple) else (final,)
    # one scalar that depends on every output and every final state, with distinct weights
    loss = (Y * torch.linspace(-1, 1, Y.numel(), dtype=Y.dtype).reshape(Y.shape)).sum()
    loss = loss + sum((f**2).sum() for f in finals)
    inputs = [X, *_leaves(state), *layer.parameters()]
    grads = torch.autograd.grad(loss, inputs)
    return Y, finals, grads


CASES = list(itertools.product(PAIRS, (1, 2, 3), (False, True), (False, True)))


@pytest.mark.parametrize(("kind", "layers", "bidirectional", "with_state"), CASES)
def test_matches_torch_in_float64(kind, layers, bidirectional, with_state):
    ours, reference = _twins(kind, num_layers=layers, bidirectional=bidirectional)
    X = torch.randn(T, N, I, dtype=torch.float64, requires_grad=True)
    state = _state(kind, layers, 2 if bidirectional else 1) if with_state else None
    Y1, f1, g1 = _run(ours, X, state)
    Y2, f2, g2 = _run(reference, X, state)
    torch.testing.assert_close(Y1, Y2, rtol=1e-12, atol=1e-12)
    assert len(f1) == len(f2)
    for a, b in zip(f1, f2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("kind", PAIRS)
def test_parameter_names_shapes_and_state_dict_both_ways(kind):
    ours, reference = _twins(kind, num_layers=2, bidirectional=True)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in reference.named_parameters()]
    fresh = PAIRS[kind][1](I, H, num_layers=2, bidirectional=True).double()
    fresh.load_state_dict(ours.state_dict())  # scratch -> torch
    X = torch.randn(T, N, I, dtype=torch.float64)
    torch.testing.assert_close(fresh(X)[0], ours(X)[0])


@pytest.mark.parametrize("kind", PAIRS)
def test_batch_first_unbatched_and_no_bias(kind):
    ours, reference = _twins(kind, num_layers=2, batch_first=True, bias=False)
    assert not any("bias" in n for n, _ in ours.named_parameters())
    X = torch.randn(N, T, I, dtype=torch.float64)
    torch.testing.assert_close(ours(X)[0], reference(X)[0], rtol=1e-12, atol=1e-12)
    single = torch.randn(T, I, dtype=torch.float64)  # unbatched: (T, I), state (L*D, H)
    state = _state(kind, 2, 1, batch=1)
    state = tuple(s[:, 0].detach() for s in state) if isinstance(state, tuple) else state[:, 0].detach()
    Y1, f1 = ours(single, state)
    Y2, f2 = reference(single, state)
    assert Y1.shape == (T, H)
    torch.testing.assert_close(Y1, Y2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f1, f2, rtol=1e-12, atol=1e-12)


def test_relu_rnn_matches():
    ours, reference = _twins("RNN", nonlinearity="relu", num_layers=2)
    X = torch.randn(T, N, I, dtype=torch.float64)
    torch.testing.assert_close(ours(X)[1], reference(X)[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", PAIRS)
def test_dropout_between_layers_only_in_training(kind):
    ours, reference = _twins(kind, num_layers=2, dropout=0.5)
    X = torch.randn(T, N, I, dtype=torch.float64)
    ours.eval(), reference.eval()
    torch.testing.assert_close(ours(X)[0], reference(X)[0], rtol=1e-12, atol=1e-12)
    ours.train()
    torch.manual_seed(1)
    assert not torch.allclose(ours(X)[0], reference(X)[0])  # dropout acted on the second layer's input


def test_default_initialisation_matches_torch_scale():
    torch.manual_seed(0)
    layer = recurrent.LSTM(10, 64)
    bound = 1 / 64**0.5
    for p in layer.parameters():
        assert p.abs().max() <= bound and p.std() > bound / 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda l: l(torch.randn(T, N, I + 1)), "input size"),
        (lambda l: l(torch.randn(T, N, I), torch.zeros(2, N, H)), "hidden state of shape"),
        (lambda l: l(torch.randn(N, I, 2, 2)), "2-D or 3-D"),
    ],
)
def test_bad_shapes_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(recurrent.GRU(I, H))


def test_lstm_needs_both_state_tensors():
    with pytest.raises(ValueError, match="2 tensor"):
        recurrent.LSTM(I, H)(torch.randn(T, N, I), torch.zeros(1, N, H))
