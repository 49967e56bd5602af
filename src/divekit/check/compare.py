"""Compare a learner's value with the reference's, and show both compactly.

:func:`difference` returns ``None`` when two values agree and otherwise one
line saying how they differ first: a missing value, a shape, the largest
difference and where it is. Tensors, numbers (including numpy's), strings and
nested lists/tuples of those are understood; a learner's list or array stands
for a tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

MAX_SHOWN = 64  # entries of a tensor shown in full; larger ones are summarised


@dataclass(frozen=True)
class Difference:
    text: str
    largest: float | None = None


def difference(expected: Any, actual: Any, *, rtol: float, atol: float) -> Difference | None:
    """``None`` if ``actual`` equals ``expected`` within tolerance, else how they differ."""
    if isinstance(expected, torch.Tensor):
        return _tensor_difference(expected, actual, rtol=rtol, atol=atol)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return None if _plain(actual) == expected else Difference(f"{show(actual)}, expected {show(expected)}")
    if isinstance(expected, (int, float)):
        return _number_difference(float(expected), actual, rtol=rtol, atol=atol)
    if isinstance(expected, (list, tuple)):
        return _sequence_difference(expected, actual, rtol=rtol, atol=atol)
    return None if actual == expected else Difference(f"{show(actual)}, expected {show(expected)}")


def _plain(value: Any) -> Any:
    """A 0-d tensor or numpy scalar as a Python number."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dim() == 0:
        return value.item()
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "shape", None) == ():
        return value.item()
    return value


def as_tensor(value: Any) -> torch.Tensor | None:
    """A learner's tensor, array or (nested) list of numbers as a tensor; ``None`` if it is none of those."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _tensor_difference(expected: torch.Tensor, actual: Any, *, rtol: float, atol: float) -> Difference | None:
    if actual is None:
        return Difference("got None")
    tensor = as_tensor(actual)
    if tensor is None or tensor.dtype in (torch.complex64, torch.complex128):
        return Difference(f"got {type(actual).__name__}, expected a tensor of shape {tuple(expected.shape)}")
    tensor = tensor.detach().cpu()
    expected = expected.detach().cpu()
    if tuple(tensor.shape) != tuple(expected.shape):
        return Difference(f"shape {tuple(tensor.shape)}, expected {tuple(expected.shape)}")
    if not (expected.is_floating_point() or tensor.is_floating_point()):
        unequal = tensor != expected
    else:
        unequal = ~torch.isclose(tensor.double(), expected.double(), rtol=rtol, atol=atol, equal_nan=True)
    if not bool(unequal.any()):
        return None
    gaps = (tensor.double() - expected.double()).abs().nan_to_num(nan=math.inf)
    gaps = torch.where(unequal, gaps, torch.zeros_like(gaps))
    where = _position(int(gaps.argmax()), tuple(gaps.shape))
    largest = float(gaps.max())
    at = f" at {where}" if where else ""
    count = f" ({int(unequal.sum())} of {unequal.numel()} entries differ)" if unequal.numel() > 1 else ""
    return Difference(f"largest difference {largest:.4g}{at}{count}", largest)


def _position(flat: int, shape: tuple[int, ...]) -> list[int]:
    """The index of entry ``flat`` of a row-major tensor of ``shape``."""
    where = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size)
        where.append(rest)
    return where[::-1]


def _number_difference(expected: float, actual: Any, *, rtol: float, atol: float) -> Difference | None:
    actual = _plain(actual)
    if isinstance(actual, torch.Tensor) and actual.numel() == 1:
        actual = actual.item()
    if not isinstance(actual, (int, float)) or isinstance(actual, bool):
        return Difference(f"got {show(actual)}, expected the number {show(expected)}")
    if math.isnan(expected) and math.isnan(actual):
        return None
    if actual == expected or math.isclose(actual, expected, rel_tol=rtol, abs_tol=atol):
        return None
    gap = abs(actual - expected)
    return Difference(f"{show(actual)}, expected {show(expected)}: difference {gap:.4g}", gap)


def _sequence_difference(expected: list | tuple, actual: Any, *, rtol: float, atol: float) -> Difference | None:
    if isinstance(actual, torch.Tensor) and all(isinstance(e, (int, float)) for e in expected):
        actual = actual.tolist()
    if _flat_exact(expected):  # a shape, token ids, tokens: shown whole
        same = isinstance(actual, (list, tuple)) and [_plain(a) for a in actual] == list(expected)
        return None if same else Difference(f"{show(actual)}, expected {show(expected)}")
    if not isinstance(actual, (list, tuple)):
        return Difference(f"got {type(actual).__name__} {show(actual)}, expected a sequence {show(expected)}")
    if len(actual) != len(expected):
        return Difference(f"{len(actual)} items {show(actual)}, expected {len(expected)}: {show(expected)}")
    for index, (e, a) in enumerate(zip(expected, actual)):
        found = difference(e, a, rtol=rtol, atol=atol)
        if found is not None:
            return Difference(f"item {index}: {found.text}", found.largest)
    return None


def _flat_exact(values: list | tuple) -> bool:
    return all(isinstance(v, (int, str, bool)) for v in values)


def show(value: Any, *, digits: int = 4) -> str:
    """A compact text of a value for the report (tensors at ``digits`` significant digits)."""
    if isinstance(value, torch.Tensor):
        return _show_tensor(value, digits)
    if isinstance(value, float):
        return f"{value:.{max(digits, 6)}g}"
    if isinstance(value, (list, tuple)) and len(value) > MAX_SHOWN:
        shown = ", ".join(show(v, digits=digits) for v in value[:MAX_SHOWN])
        return f"[{shown}, ... ({len(value)} items)]"
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        inner = ", ".join(show(v, digits=digits) for v in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    text = repr(value)
    return text if len(text) <= 400 else text[:400] + "..."


def _show_tensor(tensor: torch.Tensor, digits: int) -> str:
    tensor = tensor.detach().cpu()
    if tensor.numel() > MAX_SHOWN:
        flat = ", ".join(f"{v:.{digits}g}" for v in tensor.flatten()[:8].double().tolist())
        return f"tensor of shape {tuple(tensor.shape)}: [{flat}, ...]"
    values = tensor.double().tolist() if tensor.is_floating_point() else tensor.tolist()
    return f"tensor({_nested(values, digits)})"


def _nested(values: Any, digits: int) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v, digits) for v in values) + "]"
    if isinstance(values, float):
        return f"{values:.{digits}g}"
    return str(values)
