"""§6.4 RNN, §6.5 GRU, §6.6 LSTM: the book's functions of ``(inputs, state, params)``, layers, and one RNN step.

Two signatures per network: the book's from-scratch function (references in
:mod:`divekit.check.catalogue.book_rnn`) and a layer that is a twin of
``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` (references: :mod:`divekit.nn.recurrent`,
parameters copied by name or order). Sequences of length 1 and batches of 1
are among the examples, as is a state that is not zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from divekit.check.catalogue import book_rnn
from divekit.check.compare import as_tensor
from divekit.check.fit import is_function, is_module_class, takes_positional
from divekit.check.harness import (ModuleSubject, differs, equals, gradient_checks, missing_gradient, seeded,
                                   value_checks)  # fmt: skip
from divekit.check.model import Concept, Hint, Property, Variant
from divekit.check.strategies import seeds, tensors
from divekit.nn import recurrent

SMALL = {"low": -4, "high": 4, "scale": 0.25}  # entries in [-1, 1]: tanh and sigmoid stay away from saturation
TITLES = {"rnn": ("6.4", "RNN"), "gru": ("6.5", "GRU 门控循环单元"), "lstm": ("6.6", "LSTM 长短期记忆网络")}
TWINS = {"rnn": recurrent.RNN, "gru": recurrent.GRU, "lstm": recurrent.LSTM}


@st.composite
def book_examples(draw: Any, *, cell: str) -> dict[str, Any]:
    T, N, V, h, q = (draw(st.integers(1, n)) for n in (4, 3, 4, 4, 3))
    state = tuple(draw(tensors((N, h), **SMALL)) for _ in state_names(cell))
    params = [draw(tensors(shape, **SMALL)) for shape in book_rnn.param_shapes(cell, V, h, q)]
    return {"inputs": draw(tensors((T, N, V), **SMALL)), "state": state, "params": params}


def state_names(cell: str) -> tuple[str, ...]:
    return ("H", "C") if cell == "lstm" else ("H",)


def normalise(out: Any) -> Any:
    """The book's ``(Y, state)`` with Y as ``(T * N, q)`` (a stacked ``(T, N, q)`` is accepted) and state a tuple."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        return out
    Y, state = out
    tensor = as_tensor(Y)
    if tensor is not None and tensor.dim() == 3:
        Y = tensor.reshape(-1, tensor.shape[-1])
    return Y, (state,) if isinstance(state, torch.Tensor) else tuple(state)


def _book_properties(cell: str) -> tuple[Property, ...]:
    reference, names = book_rnn.REFERENCES[cell], state_names(cell)
    labels = ("Y", *(f"state {n}" for n in names))

    def outputs(fn, ex):
        expected = reference(ex["inputs"], ex["state"], ex["params"])
        yield from value_checks(expected, normalise(fn(ex["inputs"], tuple(ex["state"]), list(ex["params"]))), labels)

    def call(f, normal):
        def run(**kw):
            state = tuple(kw[n] for n in names)
            params = [kw[n] for n in book_rnn.PARAM_NAMES[cell]]
            return normal(f(kw["inputs"], state, params))

        return run

    def gradients(fn, ex):
        inputs = {"inputs": ex["inputs"], **dict(zip(names, ex["state"])),
                  **dict(zip(book_rnn.PARAM_NAMES[cell], ex["params"]))}  # fmt: skip
        yield from gradient_checks(call(reference, lambda out: out), call(fn, normalise), inputs, list(inputs),
                                   labels=labels)  # fmt: skip

    equal = "outputs and the final state equal the book's network (float64)"
    return (Property(equal, book_examples(cell=cell), outputs),
            Property("gradients with respect to the inputs, the initial state and every parameter equal the "
                     "reference's", book_examples(cell=cell), gradients, needs=(equal,)))  # fmt: skip


# ----------------------------------------------------------------------------- layers (twins of nn.RNN...)
@st.composite
def layer_examples(draw: Any, *, cell: str) -> dict[str, Any]:
    T, N, I, H = (draw(st.integers(1, n)) for n in (4, 3, 4, 4))
    state = tuple(draw(tensors((1, N, H), **SMALL)) for _ in state_names(cell))
    return {"input_size": I, "hidden_size": H, "X": draw(tensors((T, N, I), **SMALL)), "state": state,
            "seed": draw(seeds())}  # fmt: skip


def _layer_properties(cell: str) -> tuple[Property, ...]:
    twin, labels = TWINS[cell], ("Y", *(f"final {n}" for n in ("h_n", "c_n")[:len(state_names(cell))]))

    def pair(subject, ex):
        ref = seeded(lambda: twin(ex["input_size"], ex["hidden_size"]), ex["seed"])
        return ref, subject.build(ref, ex["input_size"], ex["hidden_size"])

    def runner(module, ex, *, ours: bool):
        takes_state = not ours or takes_positional(module.forward, 2)

        def run(X, **state):
            given = tuple(state[f"h{i}"] for i in range(len(ex["state"]))) if takes_state else None
            hx = given if given is None or len(given) > 1 else given[0]
            return module(X) if hx is None else module(X, hx)

        return run, takes_state

    def outputs(subject, ex):
        ref, ours = pair(subject, ex)
        ours_run, takes_state = runner(ours, ex, ours=True)
        state = {f"h{i}": s if takes_state else torch.zeros_like(s) for i, s in enumerate(ex["state"])}
        yield from value_checks(runner(ref, ex, ours=False)[0](ex["X"], **state), ours_run(ex["X"].clone(), **state),
                                labels)  # fmt: skip

    def gradients(subject, ex):
        ref, ours = pair(subject, ex)
        ours_run, takes_state = runner(ours, ex, ours=True)
        state = {f"h{i}": s if takes_state else torch.zeros_like(s) for i, s in enumerate(ex["state"])}
        names = ("X", *state) if takes_state else ("X",)
        ref_run = runner(ref, ex, ours=False)[0]
        yield from gradient_checks(ref_run, ours_run, {"X": ex["X"], **state}, names, seed=ex["seed"],
                                   modules=(ref, ours, subject.match), labels=labels)  # fmt: skip

    equal = f"outputs and the final state equal nn.{cell.upper()}'s with the same weights (float64)"
    return (Property(equal, layer_examples(cell=cell), outputs),
            Property("gradients with respect to X, the initial state and every weight equal the reference's",
                     layer_examples(cell=cell), gradients, needs=(equal,)))  # fmt: skip


# ----------------------------------------------------------------------------- known mistakes
def _book_mistake(cell: str, mistake: Callable[[torch.Tensor, tuple, list], tuple]) -> Callable[[Any], bool]:
    """The failing value equals what ``mistake(inputs, state, params)`` returns (and the mistake matters)."""

    def matches(failure) -> bool:
        ex = failure.example
        if "params" not in ex:
            return False
        wrong = normalise(mistake(ex["inputs"], tuple(ex["state"]), list(ex["params"])))
        right = book_rnn.REFERENCES[cell](ex["inputs"], tuple(ex["state"]), list(ex["params"]))
        labels = ["Y", *(f"state {n}" for n in state_names(cell))]
        if failure.label not in labels:
            return False
        index = labels.index(failure.label)
        value, correct = [wrong[0], *wrong[1]][index], [right[0], *right[1]][index]
        return differs(value, correct) and equals(failure, value)

    return matches


def _loop(step: Callable, *, output_first: bool = False) -> Callable:
    """A book-style network from ``step(X, state, params) -> state``; ``output_first``: Y from the old H."""

    def network(inputs, state, params):
        outputs = []
        for X in inputs:
            new = step(X, state, params)
            outputs.append((state if output_first else new)[0] @ params[-2] + params[-1])
            state = new
        return torch.cat(outputs, dim=0), state

    return network


def _rnn_step(act: Callable = torch.tanh, *, transpose: bool = False) -> Callable:
    def step(X, state, p):
        return (act(X @ p[0] + state[0] @ (p[1].t() if transpose else p[1]) + p[2]),)

    return step


def _not_carried(inputs, state, params):
    """Every step starts again from the initial H."""
    first = state[0]
    return _loop(lambda X, s, p: (torch.tanh(X @ p[0] + first @ p[1] + p[2]),))(inputs, state, params)


def _lstm_step(*, tanh_c: bool = True, swap_fi: bool = False, candidate: Callable = torch.tanh) -> Callable:
    def step(X, state, p):
        H, C = state
        I, Fg, O = (torch.sigmoid(X @ p[k] + H @ p[k + 1] + p[k + 2]) for k in (0, 3, 6))
        C_tilda = candidate(X @ p[9] + H @ p[10] + p[11])
        C = I * C + Fg * C_tilda if swap_fi else Fg * C + I * C_tilda
        return (O * (torch.tanh(C) if tanh_c else C), C)

    return step


def _gru_swapped_gates(inputs, state, params):
    return book_rnn.gru(inputs, state, params[3:6] + params[0:3] + params[6:])


def _gru_step(*, reversed_update: bool = False, no_reset: bool = False) -> Callable:
    def step(X, state, p):
        (H,) = state
        Z = torch.sigmoid(X @ p[0] + H @ p[1] + p[2])
        R = torch.ones_like(H) if no_reset else torch.sigmoid(X @ p[3] + H @ p[4] + p[5])
        H_tilda = torch.tanh(X @ p[6] + (R * H) @ p[7] + p[8])
        return ((1 - Z) * H + Z * H_tilda,) if reversed_update else (Z * H + (1 - Z) * H_tilda,)

    return step


def _state_kept(failure) -> bool:
    """The returned state is the initial one."""
    ex = failure.example
    names = state_names("lstm" if len(ex.get("state", ())) == 2 else "rnn")
    return failure.label.startswith("state") and equals(failure, ex["state"][names.index(failure.label[-1])])


def _lstm_state_swapped(failure) -> bool:
    ex = failure.example
    if failure.label not in ("state H", "state C") or "params" not in ex:
        return False
    _, (H, C) = book_rnn.lstm(ex["inputs"], tuple(ex["state"]), list(ex["params"]))
    return differs(H, C) and equals(failure, C if failure.label == "state H" else H)


NO_GRADIENT = missing_gradient("no gradient reaches this tensor: compute with the tensors themselves, not .data, "
                               ".item() or torch.tensor(...) of their values")  # fmt: skip
COMMON = (
    Hint("the returned state is the initial one: return the state after the last step, e.g. (H,)", _state_kept),
    NO_GRADIENT,
)
RNN_HINTS = (
    Hint("the hidden state uses tanh: H = torch.tanh(X @ W_xh + H @ W_hh + b_h)", lambda f: any(
        _book_mistake("rnn", _loop(_rnn_step(act)))(f) for act in (torch.relu, torch.sigmoid, lambda x: x))),
    Hint("the hidden state is not carried to the next step: assign the new H to H inside the loop",
         _book_mistake("rnn", _not_carried)),
    Hint("each output is computed from the previous hidden state: update H first, then Y = H @ W_hq + b_q",
         _book_mistake("rnn", _loop(_rnn_step(), output_first=True))),
    Hint("W_hh is transposed: the notes multiply H @ W_hh", _book_mistake("rnn", _loop(_rnn_step(transpose=True)))),
) + COMMON  # fmt: skip
GRU_HINTS = (
    Hint("the update gate is reversed: H = Z * H + (1 - Z) * H_tilda (Z keeps the old state)",
         _book_mistake("gru", _loop(_gru_step(reversed_update=True)))),
    Hint("the reset gate is applied after W_hh (as nn.GRU does): the book resets first, (R * H) @ W_hh",
         _book_mistake("gru", lambda i, s, p: book_rnn.run_steps(
             lambda X, st_: book_rnn.gru_step(X, st_, p, reset_after=True), i, s, p[-2], p[-1]))),
    Hint("the reset and update gates' parameters are swapped: the book's order is W_xz, W_hz, b_z, W_xr, W_hr, "
         "b_r, W_xh, W_hh, b_h, W_hq, b_q", _book_mistake("gru", _gru_swapped_gates)),
    Hint("the reset gate is never used: H_tilda = tanh(X @ W_xh + (R * H) @ W_hh + b_h)",
         _book_mistake("gru", _loop(_gru_step(no_reset=True)))),
) + COMMON  # fmt: skip
LSTM_HINTS = (
    Hint("H = O * tanh(C): the memory cell goes through tanh before the output gate",
         _book_mistake("lstm", _loop(_lstm_step(tanh_c=False)))),
    Hint("the forget and input gates are swapped: C = F * C + I * C_tilda",
         _book_mistake("lstm", _loop(_lstm_step(swap_fi=True)))),
    Hint("the candidate memory uses tanh, not sigmoid: C_tilda = tanh(X @ W_xc + H @ W_hc + b_c)",
         _book_mistake("lstm", _loop(_lstm_step(candidate=torch.sigmoid)))),
    Hint("the state is (H, C), in that order", _lstm_state_swapped),
) + COMMON  # fmt: skip


def _network(cell: str, hints: tuple[Hint, ...]) -> Concept:
    section, title = TITLES[cell]
    params = ", ".join(book_rnn.PARAM_NAMES[cell])
    state = "(H, C)" if cell == "lstm" else "(H,)"
    twin = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[cell]
    hx = "(h_0, c_0)" if cell == "lstm" else "h_0"
    return Concept(
        cell, section, title,
        (Variant(f"{cell}(inputs, state, params) -> (outputs, state): inputs (T, N, V), state {state} of (N, h), "
                 f"params [{params}]; outputs (T * N, q)", lambda obj: is_function(obj, 3), _book_properties(cell)),
         Variant(f"{twin}(input_size, hidden_size), a twin of nn.{twin}: forward(X (T, N, I), {hx} (1, N, H)) -> "
                 f"(Y, final state)", lambda obj: is_module_class(obj, 2), _layer_properties(cell), ModuleSubject)),
        hints,
    )  # fmt: skip


# ----------------------------------------------------------------------------- one RNN step
@st.composite
def step_examples(draw: Any) -> dict[str, Any]:
    N, V, h = (draw(st.integers(1, n)) for n in (3, 4, 4))
    shapes = {"X": (N, V), "H": (N, h), "W_xh": (V, h), "W_hh": (h, h), "b_h": (h,)}
    return {name: draw(tensors(shape, **SMALL)) for name, shape in shapes.items()}


def step_reference(X, H, W_xh, W_hh, b_h):
    """One step of the book's rnn (a sequence of length 1; the output layer does not matter)."""
    identity, zero = torch.eye(H.shape[1], dtype=H.dtype), torch.zeros_like(b_h)
    return book_rnn.rnn(X[None], (H,), [W_xh, W_hh, b_h, identity, zero])[1][0]


def _step_properties(call: Callable) -> tuple[Property, ...]:
    names = ("X", "H", "W_xh", "W_hh", "b_h")

    def value(fn, ex):
        yield from value_checks(step_reference(**ex), call(fn, **ex), ("new H",))

    def gradients(fn, ex):
        yield from gradient_checks(step_reference, lambda **kw: call(fn, **kw), ex, names, labels=("new H",))

    equal = "the new hidden state equals tanh(X @ W_xh + H @ W_hh + b_h) (float64)"
    return (Property(equal, step_examples(), value),
            Property("gradients with respect to X, H and every parameter equal the reference's", step_examples(),
                     gradients, needs=(equal,)))  # fmt: skip


@st.composite
def cell_examples(draw: Any) -> dict[str, Any]:
    N, I, H = (draw(st.integers(1, n)) for n in (3, 4, 4))
    return {"input_size": I, "hidden_size": H, "X": draw(tensors((N, I), **SMALL)), "H": draw(tensors((N, H), **SMALL)),
            "seed": draw(seeds())}  # fmt: skip


def _cell_properties() -> tuple[Property, ...]:
    def pair(subject, ex):
        ref = seeded(lambda: nn.RNNCell(ex["input_size"], ex["hidden_size"]), ex["seed"])
        return ref, subject.build(ref, ex["input_size"], ex["hidden_size"])

    def value(subject, ex):
        ref, ours = pair(subject, ex)
        yield from value_checks(ref(ex["X"], ex["H"]), ours(ex["X"].clone(), ex["H"].clone()), ("new H",))

    def gradients(subject, ex):
        ref, ours = pair(subject, ex)
        yield from gradient_checks(lambda X, H: ref(X, H), lambda X, H: ours(X, H), {"X": ex["X"], "H": ex["H"]},
                                   ("X", "H"), seed=ex["seed"], modules=(ref, ours, subject.match),
                                   labels=("new H",))  # fmt: skip

    equal = "the new hidden state equals nn.RNNCell's with the same weights (float64)"
    return (Property(equal, cell_examples(), value),
            Property("gradients with respect to X, H and every weight equal nn.RNNCell's", cell_examples(), gradients,
                     needs=(equal,)))  # fmt: skip


def _step_mistake(mistake: Callable) -> Callable[[Any], bool]:
    def matches(failure) -> bool:
        ex = failure.example
        if "W_xh" not in ex or failure.label != "new H":
            return False
        wrong = mistake(ex["X"], ex["H"], ex["W_xh"], ex["W_hh"], ex["b_h"])
        return differs(wrong, step_reference(**ex)) and equals(failure, wrong)

    return matches


RNN_CELL = Concept(
    "rnn-cell", "6.4.1", "模型",
    (Variant("rnn_cell(X, H, W_xh, W_hh, b_h) -> H: one step, X (N, V), H (N, h); "
             "H = tanh(X @ W_xh + H @ W_hh + b_h)", lambda obj: is_function(obj, 5),
             _step_properties(lambda fn, X, H, W_xh, W_hh, b_h: fn(X, H, W_xh, W_hh, b_h))),
     Variant("rnn_cell(X, H, params) -> H with params [W_xh, W_hh, b_h]", lambda obj: is_function(obj, 3),
             _step_properties(lambda fn, X, H, W_xh, W_hh, b_h: fn(X, H, [W_xh, W_hh, b_h]))),
     Variant("RNNCell(input_size, hidden_size), a twin of nn.RNNCell: forward(X (N, I), H (N, H)) -> new H",
             lambda obj: is_module_class(obj, 2), _cell_properties(), ModuleSubject)),
    (Hint("the new state goes through tanh: H = torch.tanh(X @ W_xh + H @ W_hh + b_h)", lambda f: any(
        _step_mistake(lambda X, H, Wx, Wh, b, act=act: act(X @ Wx + H @ Wh + b))(f)
        for act in (torch.relu, torch.sigmoid, lambda x: x))),
     Hint("W_hh is transposed: the notes multiply H @ W_hh",
          _step_mistake(lambda X, H, Wx, Wh, b: torch.tanh(X @ Wx + H @ Wh.t() + b))),
     Hint("the bias b_h is missing", _step_mistake(lambda X, H, Wx, Wh, b: torch.tanh(X @ Wx + H @ Wh))),
     Hint("X multiplies W_xh and H multiplies W_hh, not the other way round",
          _step_mistake(lambda X, H, Wx, Wh, b: torch.tanh(H @ Wx + X @ Wh + b))),
     NO_GRADIENT),
    aliases=("rnn_cell", "rnn_step", "RNNCell"),
)  # fmt: skip

CONCEPTS = (_network("rnn", RNN_HINTS), _network("gru", GRU_HINTS), _network("lstm", LSTM_HINTS), RNN_CELL)
