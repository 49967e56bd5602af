"""§2.2 池化层: the notes' ``pool2d(X, pool_size, mode='max')``, one step at a time (stride 1).

Reference: :func:`divekit.nn.pooling.pool2d` (proven equal to ``nn.MaxPool2d``
and ``nn.AvgPool2d``). Max pooling's gradient is checked on distinct values,
where the largest entry of a window is unique.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st

from divekit.check.fit import is_function
from divekit.check.harness import actual_tensor, differs, equals, gradient_checks, missing_gradient
from divekit.check.model import Check, Concept, Hint, Property, Variant
from divekit.check.strategies import distinct_tensors, tensors
from divekit.nn.pooling import pool2d

SECTION, TITLE = "2.2", "池化层"


@st.composite
def pools(draw: Any, *, mode: str, distinct: bool = False) -> dict[str, Any]:
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    size = (draw(st.integers(1, h)), draw(st.integers(1, w)))
    X = draw(distinct_tensors((h, w)) if distinct else tensors((h, w)))
    return {"X": X, "pool_size": size, "mode": mode}


def _edges(mode: str) -> tuple[dict[str, Any], ...]:
    X = torch.tensor([[0.0, 1, 2], [3, 4, 5], [6, 7, 8]])
    return tuple({"X": X[:rows], "pool_size": size, "mode": mode}
                 for rows, size in ((3, (3, 3)), (3, (1, 1)), (1, (1, 2)), (3, (2, 1))))  # fmt: skip


def _values(fn, ex):
    yield Check("Y", pool2d(ex["X"], ex["pool_size"], ex["mode"]), fn(ex["X"], ex["pool_size"], ex["mode"]))


def _gradients(fn, ex):
    mode = ex["mode"]
    yield from gradient_checks(lambda X: pool2d(X, ex["pool_size"], mode), lambda X: fn(X, ex["pool_size"], mode),
                               {"X": ex["X"]}, ("X",))  # fmt: skip


MAX, AVG = "max pooling equals the reference (stride 1)", "average pooling equals the reference (stride 1)"
PROPERTIES = (
    Property(MAX, pools(mode="max"), _values, _edges("max")),
    Property(AVG, pools(mode="avg"), _values, _edges("avg")),
    Property("gradients of max pooling (distinct values) with respect to X equal the reference's",
             pools(mode="max", distinct=True), _gradients, needs=(MAX,)),
    Property("gradients of average pooling with respect to X equal the reference's", pools(mode="avg"), _gradients,
             needs=(AVG,)),
)  # fmt: skip


def _is(mistake):
    """The learner's Y equals ``mistake(X, (ph, pw), mode)`` where that differs from the right answer."""

    def matches(failure) -> bool:
        X, size, mode = failure.example["X"], failure.example["pool_size"], failure.example["mode"]
        wrong, right = mistake(X, size, mode), pool2d(X, size, mode)
        return failure.label == "Y" and differs(wrong, right) and equals(failure, wrong)

    return matches


def _window_cut_short(failure) -> bool:
    X, size, mode = failure.example["X"], failure.example["pool_size"], failure.example["mode"]
    right = pool2d(X, size, mode)
    actual = actual_tensor(failure)
    gaps = [r - a for r, a in zip(right.shape, actual.shape)]
    shorter = actual.dim() == 2 and set(gaps) <= {0, 1} and 1 in gaps
    return shorter and actual.allclose(right[:actual.shape[0], :actual.shape[1]])


def _swapped(X, size, mode):
    """Windows read as X[i:i + p_w, j:j + p_h] on the right output grid (slices cut short at the edges)."""
    (ph, pw), (h, w) = size, X.shape
    rows = [[_reduce(X[i:i + pw, j:j + ph], mode) for j in range(w - pw + 1)] for i in range(h - ph + 1)]
    return torch.stack([torch.stack(row) for row in rows])


def _reduce(window: torch.Tensor, mode: str) -> torch.Tensor:
    return window.max() if mode == "max" else window.mean()


def _pool_swapped(failure) -> bool:
    (ph, pw), (h, w) = failure.example["pool_size"], failure.example["X"].shape
    if ph == pw:
        return False
    if failure.error is not None:
        return pw > h or ph > w  # the swapped window does not fit: an empty slice or a shape error
    swapped_shape = (max(h - pw + 1, 0), max(w - ph + 1, 0))
    return tuple(actual_tensor(failure).shape) == swapped_shape or _is(_swapped)(failure)


HINTS = (
    Hint("average pooling adds the window up: divide by its size (.mean(), not .sum())",
         _is(lambda X, size, mode: pool2d(X, size, mode) * size[0] * size[1])),
    Hint("mode='avg' still takes the maximum: compare the mode with == and branch on it",
         _is(lambda X, size, mode: pool2d(X, size, "max"))),
    Hint("the window jumps by the pool size: the notes' pool2d slides one row/column at a time (stride 1)",
         _is(lambda X, size, mode: pool2d(X, size, mode, stride=None))),
    Hint("the last row or column of windows is missing: a window starts at every i in "
         "range(X.shape[0] - p_h + 1)", _window_cut_short),
    Hint("pool_size is (p_h, p_w): height first, then width", _pool_swapped),
    missing_gradient("no gradient flows back to X: fill Y with tensor operations (X[i:i + p_h, j:j + p_w].max()), "
                     "not .item() or torch.tensor(...) of Python numbers"),
)  # fmt: skip

POOL2D = Concept(
    "pool2d", SECTION, TITLE,
    (Variant("pool2d(X, pool_size, mode='max') -> Y: X (h, w), pool_size (p_h, p_w), mode 'max' or 'avg', "
             "stride 1, Y (h - p_h + 1, w - p_w + 1)", lambda obj: is_function(obj, 3), PROPERTIES),),
    HINTS,
)  # fmt: skip

CONCEPTS = (POOL2D,)
