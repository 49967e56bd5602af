"""§6.12.3 Multi-head Self-attention: the book's ``MultiHeadAttention``.

Reference: :class:`divekit.nn.multihead_attention.MultiHeadAttention` (proven
equal to ``nn.MultiheadAttention``), whose ``W_q, W_k, W_v, W_o`` carry the
book's names. Two signatures are accepted: the Chinese edition's
``(key_size, query_size, value_size, num_hiddens, num_heads, dropout)`` and the
later ``(num_hiddens, num_heads, dropout)`` whose projections are
``nn.LazyLinear`` (sized by a first call).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from hypothesis import strategies as st

from divekit.check.catalogue.attention import LENGTHS, draw_lengths, layer_properties
from divekit.check.fit import is_module_class
from divekit.check.harness import ModuleSubject, differs, equals, missing_gradient, seeded
from divekit.check.model import Concept, Hint, Variant
from divekit.check.strategies import seeds, tensors
from divekit.nn import attention
from divekit.nn.multihead_attention import MultiHeadAttention

SECTION, TITLE = "6.12.3", "Multi-head Self-attention"
INPUTS = ("queries", "keys", "values")


@st.composite
def examples(draw: Any) -> dict[str, Any]:
    N, Tq, Tk = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    heads, width = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    q, k, v = (draw(st.integers(1, 3)) for _ in range(3))
    kind = draw(st.sampled_from(LENGTHS))
    return {"key_size": k, "query_size": q, "value_size": v, "num_hiddens": heads * width, "num_heads": heads,
            "queries": draw(tensors((N, Tq, q))), "keys": draw(tensors((N, Tk, k))),
            "values": draw(tensors((N, Tk, v))), "valid_lens": draw_lengths(draw, kind, N, Tq, Tk),
            "seed": draw(seeds())}  # fmt: skip


def reference(ex: dict[str, Any]) -> MultiHeadAttention:
    sizes = {k: ex[k] for k in ("key_size", "query_size", "value_size")}
    return seeded(lambda: MultiHeadAttention(ex["num_hiddens"], ex["num_heads"], **sizes), ex["seed"]).eval()


def _pair(positional: tuple[str, ...]):
    def pair(subject: ModuleSubject, ex: dict[str, Any]):
        ref = reference(ex)
        ours = subject.build(ref, *(ex[k] for k in positional), 0.0,
                             warm_up=lambda m: m(*(ex[k] for k in INPUTS), ex["valid_lens"]))  # fmt: skip
        return ref, ours.eval()

    return pair


def attend(ex: dict[str, Any], *, split: bool = True, tiled: bool = False, project: bool = True,
           scale_all: bool = False) -> torch.Tensor:  # fmt: skip
    """Multi-head attention written out with the reference's weights, optionally with a known mistake.

    Args:
        split: heads split as (N, T, h, d) -> (N * h, T, d) (else a straight reshape, which mixes positions).
        tiled: valid_lens tiled across heads (repeat) instead of repeated per head (repeat_interleave).
        project: the concatenated heads go through W_o.
        scale_all: scores divided by sqrt(num_hiddens) instead of sqrt(num_hiddens / h).
    """
    layer, h = reference(ex), ex["num_heads"]

    def heads(X: torch.Tensor) -> torch.Tensor:
        N, T, _ = X.shape
        return X.reshape(N, T, h, -1).permute(0, 2, 1, 3).reshape(N * h, T, -1) if split else X.reshape(N * h, T, -1)

    Q, K, V = heads(layer.W_q(ex["queries"])), heads(layer.W_k(ex["keys"])), heads(layer.W_v(ex["values"]))
    lens = ex["valid_lens"]
    if lens is not None:
        lens = lens.repeat(h, *[1] * (lens.dim() - 1)) if tiled else lens.repeat_interleave(h, dim=0)
    scores = torch.bmm(Q, K.transpose(1, 2)) / math.sqrt(ex["num_hiddens"] if scale_all else Q.shape[-1])
    out = torch.bmm(attention.masked_softmax(scores, lens), V)  # (N * h, Tq, d)
    N, Tq = ex["queries"].shape[:2]
    out = out.reshape(N, h, Tq, -1).permute(0, 2, 1, 3).reshape(N, Tq, -1) if split else out.reshape(N, Tq, -1)
    return layer.W_o(out) if project else out


def _mistake(**options: bool):
    def matches(failure) -> bool:
        if failure.label != "output":
            return False
        wrong = attend(failure.example, **options)
        return differs(wrong, attend(failure.example)) and equals(failure, wrong)

    return matches


MULTI_HEAD = Concept(
    "multi-head-attention", SECTION, TITLE,
    (Variant("MultiHeadAttention(key_size, query_size, value_size, num_hiddens, num_heads, dropout, bias=False): "
             "W_q, W_k, W_v, W_o; forward(queries, keys, values, valid_lens) -> (N, Tq, num_hiddens)",
             lambda obj: is_module_class(obj, 6),
             layer_properties(_pair(("key_size", "query_size", "value_size", "num_hiddens", "num_heads")), examples(),
                              parameters=True), ModuleSubject),
     Variant("MultiHeadAttention(num_hiddens, num_heads, dropout, bias=False) with nn.LazyLinear projections",
             lambda obj: is_module_class(obj, 3),
             layer_properties(_pair(("num_hiddens", "num_heads")), examples(), parameters=True), ModuleSubject)),
    (Hint("valid_lens must be repeated for each head in a row (torch.repeat_interleave(valid_lens, num_heads, "
          "dim=0)), matching the (N * num_heads) layout of transpose_qkv; .repeat tiles them", _mistake(tiled=True)),
     Hint("the heads are split by a straight reshape to (N * h, T, d / h), which mixes positions: reshape to "
          "(N, T, h, d / h), permute(0, 2, 1, 3), then reshape", _mistake(split=False)),
     Hint("the concatenated heads must go through W_o", _mistake(project=False)),
     Hint("each head scales its scores by sqrt(num_hiddens / num_heads), its own width, not sqrt(num_hiddens)",
          _mistake(scale_all=True)),
     missing_gradient("no gradient reaches the weights: use the layers themselves, not .data", parameters=True)),
    aliases=("MultiHeadAttention",),
)  # fmt: skip

CONCEPTS = (MULTI_HEAD,)
