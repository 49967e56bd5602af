"""Concepts of §2.1 卷积层: corr2d, its multi-channel forms, and a Conv2D layer.

References: :mod:`divekit.nn.conv` (proven equal to ``F.conv2d``). Examples
include a kernel as large as the input (one output entry), 1-wide kernels,
non-square kernels (to catch swapped height and width) and one channel.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st

from divekit.check.fit import accepts_keyword, is_function, is_module_class
from divekit.check.harness import (ModuleSubject, actual_tensor, differs, equals, gradient_checks, missing_gradient,
                                   raised, seeded)  # fmt: skip
from divekit.check.model import Check, Concept, Hint, Property, Variant
from divekit.check.strategies import seeds, tensors
from divekit.nn import conv

SECTION, TITLE = "2.1", "卷积层"
NO_AUTOGRAD = ("no gradient flows back: the output was built outside autograd (torch.tensor(...) of "
               "Python numbers, .item(), .data or .detach()); fill Y with tensor operations such as "
               "Y[i, j] = (X[i:i + h, j:j + w] * K).sum()")  # fmt: skip


@st.composite
def images(draw: Any, *, in_channels: bool = False, out_channels: bool = False) -> dict[str, torch.Tensor]:
    """``X`` ``([ci,] h, w)`` and ``K`` ``([co,] [ci,] kh, kw)`` with the kernel no larger than the image."""
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    ci = (draw(st.integers(1, 3)),) if in_channels else ()
    co = (draw(st.integers(1, 3)),) if out_channels else ()
    return {"X": draw(tensors((*ci, h, w))), "K": draw(tensors((*co, *ci, kh, kw)))}


def _edge(x_shape: tuple[int, ...], k_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    X = torch.arange(torch.Size(x_shape).numel(), dtype=torch.float64).reshape(x_shape) % 5 - 2
    K = torch.arange(torch.Size(k_shape).numel(), dtype=torch.float64).reshape(k_shape) % 3 - 1
    return {"X": X, "K": K}


def shape_of(value: Any) -> Any:
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    return tuple(tensor.shape)


def function_properties(reference: Any, edges: tuple[dict, ...], strategy: Any) -> tuple[Property, ...]:
    """Shape, values and gradients of a function ``f(X, K)`` against ``reference``."""

    def shape(fn, ex):
        yield Check("shape of Y", tuple(reference(ex["X"], ex["K"]).shape), shape_of(fn(ex["X"], ex["K"])))

    def values(fn, ex):
        yield Check("Y", reference(ex["X"], ex["K"]), fn(ex["X"], ex["K"]))

    def gradients(fn, ex):
        yield from gradient_checks(lambda X, K: reference(X, K), lambda X, K: fn(X, K), ex, ("X", "K"))

    shaped, equal = "the output has the reference's shape", "the output equals the reference (float64)"
    return (Property(shaped, strategy, shape, edges),
            Property(equal, strategy, values, edges, needs=(shaped,)),
            Property("gradients with respect to X and K equal the reference's", strategy, gradients, edges,
                     needs=(equal,)))  # fmt: skip


def _window_shape(failure) -> tuple[int, ...]:
    return tuple(failure.example["K"].shape[-2:])


def _missing_last_window(failure) -> bool:
    expected = torch.as_tensor(failure.expected)
    if failure.label == "shape of Y":
        gaps = [e - a for e, a in zip(failure.expected, failure.actual)]
        return len(failure.actual) == len(failure.expected) and set(gaps) <= {0, 1} and 1 in gaps[-2:]
    actual = actual_tensor(failure)
    last_zero = (actual[..., -1, :] == 0).all() or (actual[..., :, -1] == 0).all()
    rest = actual[..., :-1, :-1].allclose(expected[..., :-1, :-1].double())
    return actual.shape == expected.shape and bool(last_zero) and bool(rest)


def _kernel_swapped(failure) -> bool:
    kh, kw = _window_shape(failure)
    if kh == kw:
        return False
    h, w = failure.example["X"].shape[-2:]
    if failure.label == "shape of Y":
        return tuple(failure.actual[-2:]) == (h - kw + 1, w - kh + 1)
    return raised(failure, RuntimeError, "must match") or raised(failure, RuntimeError, "size")


def _single(reference, mistake):
    """A hint predicate: the learner's Y equals ``mistake(X, K)`` (and the mistake changes the result)."""

    def matches(failure) -> bool:
        X, K = failure.example["X"], failure.example["K"]
        try:
            wrong = mistake(X, K)
        except RuntimeError:  # the mistake cannot even run on this input
            return False
        return failure.label == "Y" and differs(wrong, reference(X, K)) and equals(failure, wrong)

    return matches


def _matmul_windows(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    kh, kw = K.shape
    out = torch.zeros(X.shape[0] - kh + 1, X.shape[1] - kw + 1, dtype=X.dtype)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (X[i:i + kh, j:j + kw] @ K).sum()
    return out


CORR2D_HINTS = (
    Hint("the last row or column of windows is missing: a window starts at every i in "
         "range(X.shape[0] - h + 1) (and j in range(X.shape[1] - w + 1))", _missing_last_window),
    Hint("kernel height and width are swapped: K.shape is (rows, columns) = (h, w)", _kernel_swapped),
    Hint("the kernel is flipped: that is a convolution; corr2d is the cross-correlation (no flip)",
         _single(conv.corr2d, lambda X, K: conv.corr2d(X, K.flip(0, 1)))),
    Hint("each window is averaged: corr2d adds the products up (.sum(), not .mean())",
         _single(conv.corr2d, lambda X, K: conv.corr2d(X, K) / K.numel())),
    Hint("a window times the kernel is elementwise (*), not a matrix product (@)",
         lambda f: _single(conv.corr2d, _matmul_windows)(f) or raised(f, RuntimeError, "cannot be multiplied")),
    missing_gradient(NO_AUTOGRAD),
)  # fmt: skip

CORR2D = Concept(
    "corr2d", SECTION, TITLE,
    (Variant("corr2d(X, K) -> Y: X (h, w), K (kh, kw), Y (h - kh + 1, w - kw + 1)",
             lambda obj: is_function(obj, 2),
             function_properties(conv.corr2d, (_edge((3, 3), (3, 3)), _edge((1, 4), (1, 2)), _edge((4, 3), (2, 1))),
                                 images())),),
    CORR2D_HINTS,
)  # fmt: skip


def _multi_in_mistake(mistake):
    return _single(conv.corr2d_multi_in, mistake)


def _stacked_channels(failure) -> bool:
    X, K = failure.example["X"], failure.example["K"]
    stacked = torch.stack([conv.corr2d(x, k) for x, k in zip(X, K)])  # (ci, h', w')
    if failure.label == "shape of Y":
        return tuple(failure.actual) == tuple(stacked.shape)
    return X.shape[0] > 1 and equals(failure, stacked)


CORR2D_MULTI_IN = Concept(
    "corr2d-multi-in", SECTION, TITLE,
    (Variant("corr2d_multi_in(X, K) -> Y: X (ci, h, w), K (ci, kh, kw), Y (h - kh + 1, w - kw + 1)",
             lambda obj: is_function(obj, 2),
             function_properties(conv.corr2d_multi_in, (_edge((1, 3, 3), (1, 2, 2)), _edge((3, 2, 2), (3, 2, 2))),
                                 images(in_channels=True))),),
    (Hint("the channels' results are stacked: add them up, sum(corr2d(x, k) for x, k in zip(X, K))",
          _stacked_channels),
     Hint("only the first channel is used: zip over all channels of X and K",
          _multi_in_mistake(lambda X, K: conv.corr2d(X[0], K[0]))),
     Hint("the channels' results are averaged: add them up (sum, not mean)",
          _multi_in_mistake(lambda X, K: conv.corr2d_multi_in(X, K) / X.shape[0])),
     Hint("channel c of X must meet kernel K[c]: the kernels are paired with the wrong channels",
          _multi_in_mistake(lambda X, K: conv.corr2d_multi_in(X, K.flip(0)))),
     missing_gradient(NO_AUTOGRAD)),
    aliases=("corr2d_multi_in",),
)  # fmt: skip


def _multi_out_shape(failure, shape_of_mistake) -> bool:
    X, K = failure.example["X"], failure.example["K"]
    co, h, w = conv.corr2d_multi_in_out(X, K).shape
    if co == 1 and shape_of_mistake(co, h, w) == (co, h, w):
        return False
    actual = tuple(failure.actual) if failure.label == "shape of Y" else tuple(actual_tensor(failure).shape)
    return actual == shape_of_mistake(co, h, w)


CORR2D_MULTI_IN_OUT = Concept(
    "corr2d-multi-in-out", SECTION, TITLE,
    (Variant("corr2d_multi_in_out(X, K) -> Y: X (ci, h, w), K (co, ci, kh, kw), Y (co, h - kh + 1, w - kw + 1)",
             lambda obj: is_function(obj, 2),
             function_properties(conv.corr2d_multi_in_out,
                                 (_edge((2, 3, 3), (1, 2, 2, 2)), _edge((1, 2, 2), (3, 1, 2, 2))),
                                 images(in_channels=True, out_channels=True))),),
    (Hint("torch.cat joins the output channels along the rows: stack them, torch.stack([...], 0)",
          lambda f: _multi_out_shape(f, lambda co, h, w: (co * h, w))),
     Hint("the output channels are stacked along the wrong dimension: they come first, torch.stack(..., 0)",
          lambda f: any(_multi_out_shape(f, shape) for shape in (lambda co, h, w: (h, co, w),
                                                                 lambda co, h, w: (h, w, co)))),
     Hint("the co kernels are merged into one: compute one corr2d_multi_in per kernel k in K and stack them",
          lambda f: _multi_out_shape(f, lambda co, h, w: (h, w)) or _multi_out_shape(f, lambda co, h, w: (1, h, w))),
     missing_gradient(NO_AUTOGRAD)),
    aliases=("corr2d_multi_in_out",),
)  # fmt: skip


# ---------------------------------------------------------------- Conv2D layers
class BookConv2D(conv.Conv2D):
    """The book's ``Conv2D(kernel_size)``: one channel in and out, ``corr2d(X, weight) + bias`` on ``X (h, w)``."""

    def __init__(self, kernel_size: tuple[int, int]) -> None:
        super().__init__(1, 1, kernel_size)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return super().forward(X[None, None])[0, 0]


@st.composite
def book_layers(draw: Any) -> dict[str, Any]:
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kernel = (draw(st.integers(1, h)), draw(st.integers(1, w)))
    return {"kernel_size": kernel, "X": draw(tensors((h, w))), "seed": draw(seeds())}


@st.composite
def twin_layers(draw: Any, *, strided: bool) -> dict[str, Any]:
    ci, co, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if strided else (1, 1)
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2))) if strided else (0, 0)
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kernel = (draw(st.integers(1, h + 2 * padding[0])), draw(st.integers(1, w + 2 * padding[1])))
    example = {"in_channels": ci, "out_channels": co, "kernel_size": kernel}
    if strided:
        example |= {"stride": stride, "padding": padding}
    return example | {"X": draw(tensors((n, ci, h, w))), "seed": draw(seeds())}


def layer_properties(make_reference, options: tuple[str, ...], strategy: Any, *,
                     compact: bool = True) -> tuple[Property, ...]:  # fmt: skip
    """Output and gradients of a learner's layer built with the example's options, weights copied in.

    ``compact``: pass ``(k, k)`` as ``k``, as nn.Conv2d's users do (not for the book's layer, whose
    ``torch.rand(kernel_size)`` needs the pair).
    """

    def pair(subject: ModuleSubject, ex: dict) -> tuple:
        args = {k: _compact(ex[k]) if compact else ex[k] for k in options}
        reference = seeded(lambda: make_reference(**args), ex["seed"])
        positional = [args[k] for k in options if k not in ("stride", "padding")]
        keywords = {k: args[k] for k in ("stride", "padding") if k in args}
        return reference, subject.build(reference, *positional, **keywords)

    def output(subject, ex):
        reference, learner = pair(subject, ex)
        yield Check("Y", reference(ex["X"]), learner(ex["X"].clone()))

    def gradients(subject, ex):
        reference, learner = pair(subject, ex)
        yield from gradient_checks(lambda X: reference(X), lambda X: learner(X), {"X": ex["X"]}, ("X",),
                                   seed=ex["seed"], modules=(reference, learner, subject.match))  # fmt: skip

    equal = "the output equals the reference's with the same weights (float64)"
    return (Property(equal, strategy, output),
            Property("gradients with respect to X, the weight and the bias equal the reference's", strategy,
                     gradients, needs=(equal,)))  # fmt: skip


def _compact(value: Any) -> Any:
    """``(k, k)`` as ``k``: a learner's layer may take only an int, as the notes' examples pass."""
    return value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value


def _twin(**options: Any) -> conv.Conv2D:
    return conv.Conv2D(options.pop("in_channels"), options.pop("out_channels"), options.pop("kernel_size"), **options)


def _layer_mistake(mistake):
    """The learner's Y equals ``mistake(reference_module, X, example)``."""

    def matches(failure) -> bool:
        ex = failure.example
        options = {k: v for k, v in ex.items() if k not in ("X", "seed")}
        make = (lambda: BookConv2D(ex["kernel_size"])) if "in_channels" not in ex else (lambda: _twin(**options))
        reference = seeded(make, ex["seed"])
        try:
            wrong, right = mistake(reference, ex["X"], ex), reference(ex["X"])
        except RuntimeError:  # the mistake cannot even run on this input
            return False
        return failure.label == "Y" and differs(wrong, right) and equals(failure, wrong)

    return matches


def _no_bias(reference, X, ex):
    bias = reference.bias.reshape(-1, 1, 1) if X.dim() == 4 else reference.bias
    return reference(X) - bias


def _bias_last(reference, X, ex):
    unbiased = conv.conv2d(X, reference.weight, stride=ex.get("stride", 1), padding=ex.get("padding", 0))
    return unbiased + reference.bias  # (co,) broadcast along the width


def _unstrided(reference, X, ex):
    return conv.conv2d(X, reference.weight, reference.bias, padding=ex.get("padding", 0))


def _one_sided_padding(reference, X, ex):
    ph, pw = ex.get("padding", (0, 0))
    padded = torch.nn.functional.pad(X, (pw, 0, ph, 0))
    return conv.conv2d(padded, reference.weight, reference.bias, stride=ex.get("stride", 1))


CONV2D = Concept(
    "conv2d", SECTION, TITLE,
    (Variant("Conv2D(kernel_size), the book's layer: weight (kh, kw), bias (1,); forward(X (h, w)) = "
             "corr2d(X, weight) + bias", lambda obj: is_module_class(obj, 1),
             layer_properties(BookConv2D, ("kernel_size",), book_layers(), compact=False), ModuleSubject),
     Variant("Conv2D(in_channels, out_channels, kernel_size, stride=1, padding=0), a twin of nn.Conv2d on "
             "X (N, ci, h, w)", lambda obj: is_module_class(obj, 3) and accepts_keyword(obj, "stride")
             and accepts_keyword(obj, "padding"),
             layer_properties(_twin, ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
                              twin_layers(strided=True)), ModuleSubject),
     Variant("Conv2D(in_channels, out_channels, kernel_size), a twin of nn.Conv2d (stride 1, no padding)",
             lambda obj: is_module_class(obj, 3),
             layer_properties(_twin, ("in_channels", "out_channels", "kernel_size"), twin_layers(strided=False)),
             ModuleSubject)),
    (Hint("the bias is never added: return corr2d(X, self.weight) + self.bias", _layer_mistake(_no_bias)),
     Hint("the stride is ignored: the window moves stride rows/columns at a time", _layer_mistake(_unstrided)),
     Hint("padding is added on one side only: pad p rows/columns on each side (F.pad(X, (pw, pw, ph, ph)))",
          _layer_mistake(_one_sided_padding)),
     Hint("the bias is added along the last dimension: reshape it to (1, out_channels, 1, 1) first",
          lambda f: "in_channels" in f.example and (raised(f, RuntimeError, "dimension 3")
                                                    or _layer_mistake(_bias_last)(f))),
     missing_gradient("no gradient reaches this parameter: forward reads .data (or the value is not an "
                      "nn.Parameter); use self.weight and self.bias themselves", parameters=True),
     missing_gradient(NO_AUTOGRAD, parameters=False)),
    aliases=("Conv2D", "Conv2d"),
)  # fmt: skip

CONCEPTS = (CORR2D, CORR2D_MULTI_IN, CORR2D_MULTI_IN_OUT, CONV2D)
