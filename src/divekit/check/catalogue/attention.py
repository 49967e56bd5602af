"""§6.11.4 注意力分数, §6.12.4 Positional Encoding: masked softmax, additive and dot-product attention, sinusoids.

References: :mod:`divekit.nn.attention` (masked keys filled with -1e6, so a
query with no valid key gets uniform weights, as in the book) and
:class:`divekit.nn.transformer.PositionalEncoding`. ``valid_lens`` is drawn
as ``None``, one length per example ``(N,)`` or one per query ``(N, Tq)``,
lengths of 0 and of every key included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import strategies as st
from torch.nn import functional as F

from divekit.check.fit import is_function, is_module_class
from divekit.check.harness import (ModuleSubject, differs, equals, gradient_checks, missing_gradient, raised,
                                   seeded)  # fmt: skip
from divekit.check.model import Check, Concept, Hint, Property, Unrunnable, Variant
from divekit.check.strategies import lengths, seeds, tensors
from divekit.nn import attention
from divekit.nn.transformer import PositionalEncoding

SECTION, TITLE = "6.11.4", "注意力分数"
LENGTHS = ("none", "per example", "per query")


def draw_lengths(draw: Any, kind: str, N: int, Tq: int, Tk: int) -> torch.Tensor | None:
    if kind == "none":
        return None
    return draw(lengths(Tk, N)) if kind == "per example" else draw(lengths(Tk, N * Tq)).reshape(N, Tq)


@st.composite
def scores(draw: Any, *, kind: str) -> dict[str, Any]:
    N, Tq, Tk = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    return {"X": draw(tensors((N, Tq, Tk))), "valid_lens": draw_lengths(draw, kind, N, Tq, Tk)}


def _softmax_values(fn, ex):
    yield Check("weights", attention.masked_softmax(ex["X"], ex["valid_lens"]), fn(ex["X"], ex["valid_lens"]))


def _softmax_gradients(fn, ex):
    lens = ex["valid_lens"]
    yield from gradient_checks(lambda X: attention.masked_softmax(X, lens), lambda X: fn(X, lens), {"X": ex["X"]},
                               ("X",), labels=("weights",))  # fmt: skip


ONE_PER_EXAMPLE = "with valid_lens (N,): keys at positions >= valid_len get weight 0 (a length of 0: uniform weights)"
SOFTMAX_PROPERTIES = (
    Property("with valid_lens=None it is the softmax over the last axis", scores(kind="none"), _softmax_values),
    Property(ONE_PER_EXAMPLE, scores(kind="per example"), _softmax_values,
             ({"X": torch.zeros(2, 2, 3), "valid_lens": torch.tensor([0, 3])},)),
    Property("with valid_lens (N, Tq): one valid length per query", scores(kind="per query"), _softmax_values),
    Property("gradients with respect to X equal the reference's", scores(kind="per example"), _softmax_gradients,
             needs=(ONE_PER_EXAMPLE,)),
)  # fmt: skip


def _keep(X: torch.Tensor, lens: torch.Tensor, *, inclusive: bool = False, tiled: bool = False) -> torch.Tensor:
    """Which keys are kept, as a mistaken mask would have it."""
    N, Tq, Tk = X.shape
    if lens.dim() == 1:  # the book flattens to N * Tq rows, row n * Tq + q holding example n's length
        lens = lens.repeat(Tq).reshape(N, Tq) if tiled else lens[:, None].expand(N, Tq)
    positions = torch.arange(Tk)
    return positions <= lens[..., None] if inclusive else positions < lens[..., None]


def _softmax_mistake(mistake: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[Any], bool]:
    def matches(failure) -> bool:
        X, lens = failure.example["X"], failure.example["valid_lens"]
        if lens is None or failure.label != "weights":
            return False
        wrong = mistake(X, lens)
        return differs(wrong, attention.masked_softmax(X, lens)) and equals(failure, wrong)

    return matches


def _tiled(X, lens):
    return F.softmax(X.masked_fill(~_keep(X, lens, tiled=True), -1e6), dim=-1)


def _nan_for_empty(failure) -> bool:
    from divekit.check.harness import actual_tensor

    actual = actual_tensor(failure)
    return failure.label == "weights" and bool(actual.isnan().any()) and not bool(
        torch.as_tensor(failure.expected).isnan().any())


SOFTMAX_HINTS = (
    Hint("masked positions set to 0 instead of a large negative number before softmax: exp(0) = 1 still gives them "
         "weight; fill with -1e6", _softmax_mistake(lambda X, L: F.softmax(X.masked_fill(~_keep(X, L), 0), dim=-1))),
    Hint("the mask is applied after the softmax: the kept weights no longer sum to 1; mask the scores, then softmax",
         _softmax_mistake(lambda X, L: F.softmax(X, dim=-1) * _keep(X, L))),
    Hint("a query with valid length 0 gets NaN: fill masked scores with -1e6 rather than -inf (the book's weights "
         "are then uniform)", _nan_for_empty),
    Hint("one key too many is kept: positions 0 .. valid_len - 1 are valid (arange(Tk) < valid_len)",
         _softmax_mistake(lambda X, L: F.softmax(X.masked_fill(~_keep(X, L, inclusive=True), -1e6), dim=-1))),
    Hint("valid_lens (N,) must repeat per query, each example's length Tq times in a row: "
         "torch.repeat_interleave(valid_lens, Tq), not valid_lens.repeat(Tq)", _softmax_mistake(_tiled)),
    missing_gradient("no gradient reaches X: build the weights with tensor operations (masked_fill, softmax)"),
)  # fmt: skip

MASKED_SOFTMAX = Concept(
    "masked-softmax", SECTION, TITLE,
    (Variant("masked_softmax(X, valid_lens) -> weights: X (N, Tq, Tk); valid_lens None, (N,) or (N, Tq)",
             lambda obj: is_function(obj, 2), SOFTMAX_PROPERTIES),),
    SOFTMAX_HINTS,
    aliases=("masked_softmax",),
)  # fmt: skip


# ----------------------------------------------------------------------------- attention layers
@st.composite
def attention_inputs(draw: Any, *, query_size: int | None = None, key_size: int | None = None) -> dict[str, Any]:
    """Queries, keys, values and valid_lens; sizes fixed when given (dot products need equal ones)."""
    N, Tq, Tk, v = (draw(st.integers(1, n)) for n in (2, 3, 3, 3))
    q = query_size or draw(st.integers(1, 3))
    k = key_size or draw(st.integers(1, 3))
    kind = draw(st.sampled_from(LENGTHS))
    return {"queries": draw(tensors((N, Tq, q))), "keys": draw(tensors((N, Tk, k))),
            "values": draw(tensors((N, Tk, v))), "valid_lens": draw_lengths(draw, kind, N, Tq, Tk)}  # fmt: skip


@st.composite
def additive_examples(draw: Any) -> dict[str, Any]:
    inputs = draw(attention_inputs())
    sizes = {"key_size": inputs["keys"].shape[-1], "query_size": inputs["queries"].shape[-1],
             "num_hiddens": draw(st.integers(1, 3))}  # fmt: skip
    return sizes | inputs | {"seed": draw(seeds())}


@st.composite
def dot_examples(draw: Any) -> dict[str, Any]:
    d = draw(st.integers(1, 4))
    return draw(attention_inputs(query_size=d, key_size=d))


INPUTS = ("queries", "keys", "values")


def _attend(module, ex, **inputs):
    return module(*(inputs.get(k, ex[k]) for k in INPUTS), ex["valid_lens"])


def layer_properties(pair: Callable, strategy: Any, *, parameters: bool) -> tuple[Property, ...]:
    """Output and gradients of an attention layer ``pair(subject, ex) -> (reference, learner)`` (eval mode)."""

    def output(subject, ex):
        ref, ours = pair(subject, ex)
        yield Check("output", _attend(ref, ex), _attend(ours, ex, **{k: ex[k].clone() for k in INPUTS}))

    def gradients(subject, ex):
        ref, ours = pair(subject, ex)
        modules = (ref, ours, subject.match) if parameters else None
        yield from gradient_checks(lambda **kw: _attend(ref, ex, **kw), lambda **kw: _attend(ours, ex, **kw),
                                   {k: ex[k] for k in INPUTS}, INPUTS, seed=ex.get("seed", 0), modules=modules,
                                   labels=("output",))  # fmt: skip

    equal = "the output equals the reference's (valid_lens None, (N,) or (N, Tq); float64)"
    return (Property(equal, strategy, output),
            Property("gradients with respect to queries, keys, values" + (" and the weights" if parameters else "")
                     + " equal the reference's", strategy, gradients, needs=(equal,)))  # fmt: skip


def _additive_pair(subject, ex):
    sizes = (ex["key_size"], ex["query_size"], ex["num_hiddens"])
    ref = seeded(lambda: attention.AdditiveAttention(*sizes), ex["seed"]).eval()
    return ref, subject.build(ref, *sizes, 0.0).eval()


class _Dot:
    """A layer without parameters: just built with dropout 0 and put in evaluation mode."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.match = None


def _dot_pair(subject: _Dot, ex):
    return attention.DotProductAttention().eval(), subject.cls(0.0).eval()


def _scores_mistake(score: Callable[[dict[str, Any]], torch.Tensor], *, dim: int = -1, mask: bool = True):
    """The learner's output equals attention pooling with ``score(example)`` as the scores."""

    def matches(failure) -> bool:
        ex = failure.example
        if failure.label != "output":
            return False
        scores_ = score(ex)
        lens = ex["valid_lens"] if mask else None
        weights = attention.masked_softmax(scores_, lens) if dim == -1 else F.softmax(scores_, dim=dim)
        wrong = torch.bmm(weights, ex["values"])
        right = _reference_output(ex)
        return differs(wrong, right) and equals(failure, wrong)

    return matches


def _reference_output(ex: dict[str, Any]) -> torch.Tensor:
    if "key_size" in ex:
        return _attend(seeded(lambda: attention.AdditiveAttention(ex["key_size"], ex["query_size"], ex["num_hiddens"]),
                              ex["seed"]).eval(), ex)  # fmt: skip
    return _attend(attention.DotProductAttention().eval(), ex)


def _dot(ex: dict[str, Any], scale: float) -> torch.Tensor:
    return torch.bmm(ex["queries"], ex["keys"].transpose(1, 2)) / scale


def _additive(ex: dict[str, Any], *, act: Callable = torch.tanh, swap: bool = False) -> torch.Tensor:
    layer = seeded(lambda: attention.AdditiveAttention(ex["key_size"], ex["query_size"], ex["num_hiddens"]), ex["seed"])
    W_q, W_k = (layer.W_k, layer.W_q) if swap else (layer.W_q, layer.W_k)
    features = act(W_q(ex["queries"]).unsqueeze(2) + W_k(ex["keys"]).unsqueeze(1))
    return layer.w_v(features).squeeze(-1)


def _has_biases(failure) -> bool:
    if not isinstance(failure.error, Unrunnable):
        return False
    ex = failure.example
    module = failure.context["subject"].cls(ex["key_size"], ex["query_size"], ex["num_hiddens"], 0.0)
    return any(name.endswith("bias") for name, _ in module.named_parameters())


MASK_IGNORED = "valid_lens is ignored: pass it to masked_softmax so padded keys get no weight"
WRONG_AXIS = "the softmax runs over the queries: it must run over the keys, the last axis (masked_softmax does)"
ADDITIVE = Concept(
    "additive-attention", SECTION, TITLE,
    (Variant("AdditiveAttention(key_size, query_size, num_hiddens, dropout): W_k, W_q, w_v (nn.Linear, bias=False); "
             "forward(queries, keys, values, valid_lens)", lambda obj: is_module_class(obj, 4),
             layer_properties(_additive_pair, additive_examples(), parameters=True), ModuleSubject),),
    (Hint(MASK_IGNORED, _scores_mistake(_additive, mask=False)),
     Hint("the features go through tanh: scores = w_v(tanh(W_q(q) + W_k(k)))",
          lambda f: any(_scores_mistake(lambda ex, act=act: _additive(ex, act=act))(f)
                        for act in (torch.relu, torch.sigmoid))),
     Hint("W_q projects the queries and W_k the keys, not the other way round",
          lambda f: _scores_mistake(lambda ex: _additive(ex, swap=True))(f) or (
              raised(f, RuntimeError, "cannot be multiplied") and f.example["key_size"] != f.example["query_size"])),
     Hint(WRONG_AXIS, _scores_mistake(_additive, dim=1, mask=False)),
     Hint("the book's W_q, W_k and w_v have no bias: nn.Linear(..., bias=False)", _has_biases),
     missing_gradient("no gradient reaches the weights: use the layers themselves, not .data", parameters=True)),
    aliases=("AdditiveAttention",),
)  # fmt: skip

DOT_PRODUCT = Concept(
    "dot-product-attention", SECTION, TITLE,
    (Variant("DotProductAttention(dropout): forward(queries (N, Tq, d), keys (N, Tk, d), values (N, Tk, v), "
             "valid_lens) -> (N, Tq, v), scores Q K^T / sqrt(d)", lambda obj: is_module_class(obj, 1),
             layer_properties(_dot_pair, dot_examples(), parameters=False), lambda obj, mapping: _Dot(obj)),),
    (Hint("the scores are not scaled: divide Q K^T by sqrt(d), d = queries.shape[-1]",
          _scores_mistake(lambda ex: _dot(ex, 1.0))),
     Hint("the scores are divided by d: divide by sqrt(d)",
          _scores_mistake(lambda ex: _dot(ex, ex["queries"].shape[-1]))),
     Hint("the scores are scaled by the number of keys: divide by sqrt(d), d the width of queries and keys",
          lambda f: any(_scores_mistake(lambda ex, s=s: _dot(ex, s(ex)))(f) for s in (
              lambda ex: math.sqrt(ex["keys"].shape[1]), lambda ex: math.sqrt(ex["queries"].shape[1])))),
     Hint(MASK_IGNORED, _scores_mistake(lambda ex: _dot(ex, math.sqrt(ex["queries"].shape[-1])), mask=False)),
     Hint(WRONG_AXIS, _scores_mistake(lambda ex: _dot(ex, math.sqrt(ex["queries"].shape[-1])), dim=1, mask=False))),
    aliases=("DotProductAttention",),
)  # fmt: skip


# ----------------------------------------------------------------------------- positional encoding
@st.composite
def encodings(draw: Any) -> dict[str, Any]:
    d = 2 * draw(st.integers(1, 4))
    N, T = draw(st.integers(1, 2)), draw(st.integers(1, 12))
    return {"num_hiddens": d, "X": draw(tensors((N, T, d)))}


def _encoded(cls, ex):
    reference = PositionalEncoding(ex["num_hiddens"], 0.0).eval()
    ours = cls(ex["num_hiddens"], 0.0).eval()
    yield Check("output", reference(ex["X"]), ours(ex["X"].clone()), rtol=1e-5, atol=1e-5)  # P is float32


def _table(T: int, d: int, *, angle: Callable, sin_first: bool = True, halves: bool = False) -> torch.Tensor:
    """A mistaken encoding table ``(1, T, d)``."""
    position = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(d // 2, dtype=torch.float64)[None, :]
    angles = angle(position, i, d)
    first, second = (torch.sin, torch.cos) if sin_first else (torch.cos, torch.sin)
    if halves:
        return torch.cat([first(angles), second(angles)], dim=1)[None]
    P = torch.zeros(T, d, dtype=torch.float64)
    P[:, 0::2], P[:, 1::2] = first(angles), second(angles)
    return P[None]


def _encoding_mistake(**mistake: Any) -> Callable[[Any], bool]:
    def matches(failure) -> bool:
        X, d = failure.example["X"], failure.example["num_hiddens"]
        options = {"angle": lambda p, i, d: p / 10000 ** (2 * i / d)} | mistake
        wrong = X + _table(X.shape[1], d, **options)
        return failure.label == "output" and not wrong.allclose(PositionalEncoding(d)(X), atol=1e-5) and equals(
            failure, wrong, atol=1e-5, rtol=1e-5)

    return matches


POSITIONAL_ENCODING = Concept(
    "positional-encoding", "6.12.4", "Positional Encoding 考虑位置信息",
    (Variant("PositionalEncoding(num_hiddens, dropout, max_len=1000): forward(X (N, T, d)) = X + P[:, :T], "
             "P[pos, 2i] = sin(pos / 10000^(2i/d)), P[pos, 2i+1] = cos(...)", lambda obj: is_module_class(obj, 2),
             (Property("the output is X plus the sinusoids of positions 0 .. T - 1 (dropout off in eval())",
                       encodings(), _encoded),)),),
    (Hint("sin and cos are swapped: sin on the even columns 0::2, cos on the odd columns 1::2",
          _encoding_mistake(sin_first=False)),
     Hint("the exponent is 2i/d, not i/d: use torch.arange(0, d, 2) / d",
          _encoding_mistake(angle=lambda p, i, d: p / 10000 ** (i / d))),
     Hint("positions are divided by 10000^(2i/d), not multiplied", _encoding_mistake(
         angle=lambda p, i, d: p * 10000 ** (2 * i / d))),
     Hint("sin and cos must interleave (even columns sin, odd columns cos), not fill the two halves",
          _encoding_mistake(halves=True)),
     Hint("the encoding is not added to X: return X + P[:, :T]", lambda f: f.label == "output" and equals(
         f, _table(f.example["X"].shape[1], f.example["num_hiddens"],
                   angle=lambda p, i, d: p / 10000 ** (2 * i / d)).expand_as(f.example["X"]), atol=1e-5, rtol=1e-5))),
    aliases=("PositionalEncoding",),
)  # fmt: skip

CONCEPTS = (MASKED_SOFTMAX, ADDITIVE, DOT_PRODUCT, POSITIONAL_ENCODING)
