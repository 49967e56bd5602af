"""The scratch RNN, GRU and LSTM equal torch.nn's layers: outputs, final states and gradients, in float64."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from divekit.nn import recurrent, recurrent_fast

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


# ------------------------------------------------------------ the fast path (fast=True)
def _fast_twins(kind: str, dtype=torch.float64, **options):
    readable = PAIRS[kind][0](I, H, **options).to(dtype)
    fast = PAIRS[kind][0](I, H, fast=True, **options).to(dtype)
    fast.load_state_dict(readable.state_dict())
    return fast, readable


def _assert_runs_equal(first, second, tolerance):
    (Y1, f1, g1), (Y2, f2, g2) = first, second
    torch.testing.assert_close(Y1, Y2, rtol=tolerance, atol=tolerance)
    assert len(f1) == len(f2) and len(g1) == len(g2)
    for a, b in zip((*f1, *g1), (*f2, *g2)):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)


FAST_CASES = list(itertools.product(PAIRS, (1, 2), (False, True), ((1, 3), (6, 1), (5, 4)), (False, True)))


@pytest.mark.parametrize(("kind", "layers", "bidirectional", "shape", "with_state"), FAST_CASES)
def test_fast_path_equals_the_readable_path_in_float64(kind, layers, bidirectional, shape, with_state):
    """Outputs, final states and the gradients of input, state and every parameter; length-1 sequences too."""
    fast, readable = _fast_twins(kind, num_layers=layers, bidirectional=bidirectional)
    steps, batch = shape
    X = torch.randn(steps, batch, I, dtype=torch.float64, requires_grad=True)
    state = _state(kind, layers, 2 if bidirectional else 1, batch=batch) if with_state else None
    _assert_runs_equal(_run(fast, X, state), _run(readable, X, state), 1e-12)


@pytest.mark.parametrize(
    ("kind", "options"),
    [("RNN", {"nonlinearity": "relu", "num_layers": 2}), ("RNN", {"bias": False}), ("GRU", {"bias": False}),
     ("LSTM", {"bias": False, "bidirectional": True}), ("GRU", {"batch_first": True, "num_layers": 2})],
)  # fmt: skip
def test_fast_path_equals_the_readable_path_for_every_option(kind, options):
    fast, readable = _fast_twins(kind, **options)
    shape = (N, T, I) if options.get("batch_first") else (T, N, I)
    X = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    state = _state(kind, options.get("num_layers", 1), 2 if options.get("bidirectional") else 1)
    _assert_runs_equal(_run(fast, X, state), _run(readable, X, state), 1e-12)


@pytest.mark.parametrize("kind", PAIRS)
def test_fast_path_unbatched_and_dropout_follow_the_readable_path(kind):
    fast, readable = _fast_twins(kind, num_layers=2, dropout=0.5)
    fast.eval(), readable.eval()
    single = torch.randn(T, I, dtype=torch.float64)
    torch.testing.assert_close(fast(single)[0], readable(single)[0], rtol=1e-12, atol=1e-12)
    fast.train(), readable.train()
    X = torch.randn(T, N, I, dtype=torch.float64)
    torch.manual_seed(3)
    dropped = fast(X)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(dropped, readable(X)[0], rtol=1e-12, atol=1e-12)  # the same mask between layers


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("onednn", [False, True])
def test_fast_path_in_float32_with_either_matrix_kernel(kind, onednn, monkeypatch):
    """Float32 takes oneDNN's products where this PyTorch has them, ``torch.addmm`` otherwise: both agree."""
    if onednn and recurrent_fast._onednn() is None:
        pytest.skip("this PyTorch build has no oneDNN linear kernel")
    monkeypatch.setattr(recurrent_fast, "USE_ONEDNN", onednn)
    monkeypatch.setattr(recurrent_fast, "ONEDNN_MIN_FLOPS", 0)  # these small layers would keep addmm
    fast, readable = _fast_twins(kind, torch.float32, num_layers=2, bidirectional=True)
    X = torch.randn(T, N, I, requires_grad=True)
    state = _state(kind, 2, 2)
    state = tuple(s.float().detach().requires_grad_() for s in state) if isinstance(state, tuple) else (
        state.float().detach().requires_grad_())  # fmt: skip
    _assert_runs_equal(_run(fast, X, state), _run(readable, X, state), 1e-5)


@pytest.mark.parametrize("min_flops", [0, 4e6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_either_matrix_kernel_computes_the_step_products(min_flops, dtype, monkeypatch):
    monkeypatch.setattr(recurrent_fast, "ONEDNN_MIN_FLOPS", min_flops)
    x, W, acc = torch.randn(3, 4, dtype=dtype), torch.randn(5, 4, dtype=dtype), torch.randn(3, 5, dtype=dtype)
    products = recurrent_fast._Products(x[None], W)
    packed = products.weight(W)
    torch.testing.assert_close(products.mm(x, packed, out=torch.empty(3, 5, dtype=dtype)), x @ W.T)
    torch.testing.assert_close(products.mm(x, packed, acc=acc), acc + x @ W.T)
    torch.testing.assert_close(products.mm(x, packed, bias=acc[0]), x @ W.T + acc[0])


@pytest.mark.parametrize("kind", PAIRS)
def test_fast_layer_under_autocast_takes_the_readable_steps(kind):
    fast, readable = _fast_twins(kind, torch.float32)
    X = torch.randn(T, N, I)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(fast(X)[0], readable(X)[0], rtol=0, atol=0)


@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_fast_path_keeps_each_graph_apart(kind, dtype, tolerance, monkeypatch):
    """Two forward passes before one backward, then that backward again (retain_graph): the scratch
    buffers the fast path keeps between calls must not mix the two graphs' values (float32: on oneDNN)."""
    monkeypatch.setattr(recurrent_fast, "ONEDNN_MIN_FLOPS", 0)
    fast, readable = _fast_twins(kind, dtype, num_layers=2, bidirectional=True)
    X1, X2 = (torch.randn(T, N, I, dtype=dtype, requires_grad=True) for _ in range(2))
    grads = []
    for layer in (fast, readable):
        loss = (layer(X1)[0] ** 2).sum() + (layer(X2)[0] * torch.linspace(-1, 1, 2 * H, dtype=dtype)).sum()
        first = torch.autograd.grad(loss, [X1, X2, *layer.parameters()], retain_graph=True)
        again = torch.autograd.grad(loss, [X1, X2, *layer.parameters()])
        for a, b in zip(first, again):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        grads.append(first)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("kind", PAIRS)
def test_fast_backward_passes_gradcheck(kind):
    """The hand-written backward against finite differences, independently of the readable path."""
    layer = PAIRS[kind][0](2, 3, bidirectional=True, fast=True).double()
    X = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    state = _state(kind, 1, 2, batch=2)
    state = tuple(s[:, :, :3] for s in state) if isinstance(state, tuple) else state[:, :, :3]

    def run(X, *state_and_params):
        parts = state_and_params[: len(_leaves(state))]
        Y, final = torch.func.functional_call(layer, dict(zip(names, state_and_params[len(parts) :])),
                                              (X, parts if len(parts) > 1 else parts[0]))  # fmt: skip
        return Y, *(final if isinstance(final, tuple) else (final,))

    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().requires_grad_() for p in layer.parameters()]
    leaves = [s.detach().requires_grad_() for s in _leaves(state)]
    assert torch.autograd.gradcheck(run, (X, *leaves, *params))


@pytest.mark.parametrize("kind", PAIRS)
def test_fast_layer_keeps_names_and_shows_the_option(kind):
    fast, readable = _fast_twins(kind, num_layers=2)
    assert list(fast.state_dict()) == list(readable.state_dict())
    assert "fast=True" in repr(fast) and "fast" not in repr(readable)
