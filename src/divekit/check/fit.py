"""Does a learner's object fit a signature, and how do its parameters map to the reference's?

Signatures are judged by inspection only (nothing of the learner's is called
here). Parameters of a learner's module are matched to the reference module's
by name, else by order when the shapes agree (a ``(1, C, 1, 1)`` gamma takes a
``(C,)`` weight), else through a mapping the learner gives
(``{"W": "weight.T"}``); :class:`ParameterMatch` records which, for the report.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from divekit.check.model import Unrunnable


def parameters_of(fn: Callable) -> list[inspect.Parameter] | None:
    """The parameters of ``fn`` (of ``__init__`` for a class, without ``self``); ``None`` if unknown."""
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None


def takes_positional(fn: Callable, count: int) -> bool:
    """Whether ``fn`` can be called with exactly ``count`` positional arguments."""
    params = parameters_of(fn)
    if params is None:
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    star = any(p.kind == p.VAR_POSITIONAL for p in params)
    required_kw = [p for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    return not required_kw and len(required) <= count and (star or count <= len(positional))


def accepts_keyword(fn: Callable, name: str) -> bool:
    params = parameters_of(fn) or []
    return any(p.name == name and p.kind != p.POSITIONAL_ONLY for p in params) or any(
        p.kind == p.VAR_KEYWORD for p in params)


def is_function(obj: Any, count: int) -> bool:
    """A plain callable (not a class) taking ``count`` positional arguments."""
    return callable(obj) and not isinstance(obj, type) and takes_positional(obj, count)


def is_module_class(obj: Any, count: int | None = None) -> bool:
    """An ``nn.Module`` subclass whose constructor takes ``count`` positional arguments."""
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        return False
    return count is None or takes_positional(obj, count)


def describe(obj: Any) -> str:
    """How the learner's object looks, for a signature error: ``a function corr2d(X)``."""
    if isinstance(obj, type):
        kind = "an nn.Module class" if issubclass(obj, nn.Module) else "a class"
        return f"{kind} {obj.__name__}{_signature_text(obj)}"
    if callable(obj) and hasattr(obj, "__name__"):
        return f"a function {obj.__name__}{_signature_text(obj)}"
    if isinstance(obj, nn.Module):
        return f"an instance of {type(obj).__name__}: pass the class itself, so the checker can build it"
    return f"a {type(obj).__name__}, not a function or class"


def _signature_text(obj: Any) -> str:
    try:
        return str(inspect.signature(obj).replace(return_annotation=inspect.Signature.empty))
    except (TypeError, ValueError):
        return "(...)"


@dataclass(frozen=True)
class Pair:
    """A learner parameter and the reference parameter it takes its value from."""

    learner: str
    reference: str
    transpose: bool = False

    def to_learner(self, value: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """The reference's tensor (a value or a gradient) in the learner's layout."""
        value = value.t() if self.transpose else value
        return value.reshape(shape)


@dataclass(frozen=True)
class ParameterMatch:
    """How a learner module's parameters take the reference's values."""

    pairs: tuple[Pair, ...]
    how: str  # "by name", "by order", "by the mapping given"

    def describe(self) -> str:
        names = ", ".join(p.learner if p.learner == p.reference and not p.transpose else
                          f"{p.learner} <- {p.reference}{'.T' if p.transpose else ''}" for p in self.pairs)  # fmt: skip
        return f"parameters copied from the reference {self.how}: {names or 'none'}"

    def copy(self, reference: nn.Module, learner: nn.Module) -> None:
        ours, theirs = dict(learner.named_parameters()), dict(reference.named_parameters())
        with torch.no_grad():
            for pair in self.pairs:
                ours[pair.learner].copy_(pair.to_learner(theirs[pair.reference], ours[pair.learner].shape))

    def gradients(self, reference: nn.Module, learner: nn.Module) -> list[tuple[str, Any, Any]]:
        """``(learner name, expected gradient, actual gradient)`` for every pair."""
        ours, theirs = dict(learner.named_parameters()), dict(reference.named_parameters())
        out = []
        for pair in self.pairs:
            grad = theirs[pair.reference].grad
            expected = pair.to_learner(grad, ours[pair.learner].shape) if grad is not None else None
            out.append((pair.learner, expected, ours[pair.learner].grad))
        return out


def match_parameters(learner: nn.Module, reference: nn.Module, mapping: Mapping[str, str] | None) -> ParameterMatch:
    """Pair the learner's parameters with the reference's; :class:`Unrunnable` when they cannot be."""
    ours = dict(learner.named_parameters())
    theirs = dict(reference.named_parameters())
    if mapping:
        return ParameterMatch(_mapped(ours, theirs, mapping), "by the mapping given")
    if set(ours) == set(theirs) and all(_fits(ours[n].shape, theirs[n].shape) for n in ours):
        return ParameterMatch(tuple(Pair(n, n) for n in theirs), "by name")
    if len(ours) == len(theirs) and all(_fits(a.shape, b.shape) for a, b in zip(ours.values(), theirs.values())):
        return ParameterMatch(tuple(Pair(a, b) for a, b in zip(ours, theirs)), "by order")
    raise Unrunnable(f"{type(learner).__name__}'s parameters [{_listing(ours)}] do not match the reference's "
                     f"[{_listing(theirs)}] by name or by order; register them as nn.Parameter with the "
                     "reference's shapes, or give a mapping (mapping={'W': 'weight.T'})")  # fmt: skip


def _mapped(ours: dict, theirs: dict, mapping: Mapping[str, str]) -> tuple[Pair, ...]:
    pairs = []
    for name, target in mapping.items():
        transpose = target.endswith(".T")
        target = target[:-2] if transpose else target
        if name not in ours or target not in theirs:
            missing = name if name not in ours else target
            side = "the learner's module" if name not in ours else "the reference"
            raise Unrunnable(f"mapping names {missing!r}, which is not a parameter of {side} "
                             f"(learner: {', '.join(ours)}; reference: {', '.join(theirs)})")  # fmt: skip
        shape = theirs[target].t().shape if transpose else theirs[target].shape
        if not _fits(ours[name].shape, shape):
            raise Unrunnable(f"mapping {name} <- {target}: shapes {tuple(ours[name].shape)} and {tuple(shape)} differ")
        pairs.append(Pair(name, target, transpose))
    return tuple(pairs)


def _fits(ours: torch.Size, theirs: torch.Size) -> bool:
    """Same shape, or the same shape once dimensions of size 1 are dropped ((1, C, 1, 1) and (C,))."""
    return ours == theirs or [s for s in ours if s != 1] == [s for s in theirs if s != 1]


def _listing(params: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{n} {tuple(p.shape)}" for n, p in params.items()) or "none"
