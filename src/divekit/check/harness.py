"""Helpers the concept catalogue shares: run reference and learner side by side, compare values and gradients.

- :func:`value_checks` compares outputs (a tensor or nested tuples of them);
- :func:`gradient_checks` runs both sides again on fresh copies of the
  inputs, back-propagates the same random weighting of the outputs, and
  compares the gradients of the inputs and of matched module parameters;
- :class:`ModuleSubject` builds a learner's module for an example and gives
  it the reference's parameters (see :mod:`divekit.check.fit`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from divekit.check.compare import as_tensor
from divekit.check.fit import ParameterMatch, match_parameters
from divekit.check.model import FLOAT64_ATOL, FLOAT64_RTOL, Check, Failure, Hint
from divekit.check.strategies import cotangent

Outputs = Callable[..., Any]


def tensors_in(value: Any) -> list[Any]:
    """The leaves of a (nested) tuple/list output, in order; a tensor is its own single leaf."""
    if isinstance(value, (tuple, list)) and not _is_number_list(value):
        return [leaf for item in value for leaf in tensors_in(item)]
    return [value]


def _is_number_list(value: Any) -> bool:
    return bool(value) and all(isinstance(v, (int, float, list)) for v in value) and not any(
        isinstance(v, torch.Tensor) for v in value)


def value_checks(expected: Any, actual: Any, labels: Sequence[str], **tolerance: float) -> Iterator[Check]:
    """One :class:`Check` per output; ``labels`` name them (``("Y", "state")``)."""
    ours, theirs = tensors_in(actual), tensors_in(expected)
    if len(labels) > 1 and len(ours) != len(theirs):
        yield Check("outputs", f"{len(theirs)} tensors ({', '.join(labels)})", f"{len(ours)} values", ok=False)
        return
    if len(labels) == 1:
        ours, theirs = [actual], [expected]
    for label, e, a in zip(labels, theirs, ours):
        yield Check(label, e, a, **tolerance)


def with_grad(inputs: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Fresh copies of ``inputs``; those in ``names`` require gradients."""
    return {k: v.detach().clone().requires_grad_(k in names) if isinstance(v, torch.Tensor) else v
            for k, v in inputs.items()}  # fmt: skip


def _activations(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as the learner's code meets them in a network: results of earlier operations, not leaves.

    (The book's masked_softmax writes into its scores in place, which autograd allows for such a
    tensor but refuses for a leaf.) The gradients still arrive at the leaves in ``inputs``.
    """
    return {k: v.clone() if isinstance(v, torch.Tensor) and v.requires_grad else v for k, v in inputs.items()}


def backward(outputs: Any, like: Any, seed: int) -> bool:
    """Back-propagate ``sum(output * weights)`` over the outputs; ``False`` if none is connected to autograd.

    ``like`` (the reference's outputs) fixes the weights' shapes, so both sides get the same weights.
    """
    total = None
    for ours, theirs in zip(tensors_in(outputs), tensors_in(like)):
        tensor = as_tensor(ours)
        if tensor is None or not isinstance(theirs, torch.Tensor) or not tensor.requires_grad:
            continue
        if tuple(tensor.shape) != tuple(theirs.shape):
            continue
        term = (tensor * cotangent(theirs, seed)).sum()
        total = term if total is None else total + term
    if total is None:
        return False
    total.backward()
    return True


def gradient_checks(reference: Outputs, learner: Outputs, inputs: Mapping[str, Any], names: Sequence[str], *,
                    seed: int = 0, modules: tuple[nn.Module, nn.Module, ParameterMatch] | None = None,
                    labels: Sequence[str] = ("Y",)) -> Iterator[Check]:  # fmt: skip
    """Gradients of the inputs ``names`` (and of matched parameters) after the same backward pass on both sides.

    ``reference`` and ``learner`` are called with the inputs as keyword arguments.
    """
    ref_inputs, our_inputs = with_grad(inputs, names), with_grad(inputs, names)
    expected = reference(**_activations(ref_inputs))
    actual = learner(**_activations(our_inputs))
    for check in value_checks(expected, actual, labels):
        found = as_tensor(check.actual) if isinstance(check.expected, torch.Tensor) else None
        if isinstance(check.expected, torch.Tensor) and (found is None or found.shape != check.expected.shape):
            yield Check(f"{check.label} (needed for its gradients)", check.expected, check.actual)
            return
    backward(expected, expected, seed)
    backward(actual, expected, seed)
    for name in names:
        yield Check(f"gradient of {name}", ref_inputs[name].grad, our_inputs[name].grad)
    if modules is not None:
        ref_module, our_module, match = modules
        for name, grad, our_grad in match.gradients(ref_module, our_module):
            yield Check(f"gradient of parameter {name}", grad, our_grad)


class ModuleSubject:
    """A learner's ``nn.Module`` class: built per example, then given the reference's parameters.

    Args:
        cls: the learner's class.
        mapping: learner parameter name -> reference name (``".T"`` to transpose), or ``None``.
    """

    def __init__(self, cls: type[nn.Module], mapping: Mapping[str, str] | None = None) -> None:
        self.cls = cls
        self.mapping = dict(mapping) if mapping else None
        self.match: ParameterMatch | None = None

    def build(self, reference: nn.Module, *args: Any, warm_up: Callable[[nn.Module], Any] | None = None,
              **kwargs: Any) -> nn.Module:
        """``cls(*args, **kwargs)`` with the reference's parameter values.

        ``warm_up`` runs the module once first when it has lazy parameters
        (``nn.LazyLinear``), whose shapes are known only after a forward pass.
        """
        learner = self.cls(*args, **kwargs)
        if warm_up is not None and any(nn.parameter.is_lazy(p) for p in learner.parameters()):
            with torch.no_grad():
                warm_up(learner)
        self.match = match_parameters(learner, reference, self.mapping)
        self.match.copy(reference, learner)
        return learner


def seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """A reference module whose parameters are drawn from a normal distribution seeded by ``seed``."""
    module = build()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator, dtype=param.dtype))
    return module


# ----------------------------------------------------------------- predicates shared by hints
def actual_tensor(failure: Failure) -> torch.Tensor:
    """The learner's value of a failed check as a float64 tensor (raises if it is none)."""
    tensor = as_tensor(failure.actual)
    if tensor is None:
        raise ValueError("no tensor")
    return tensor.detach().double()


def equals(failure: Failure, value: torch.Tensor, *, rtol: float = FLOAT64_RTOL, atol: float = 1e-9) -> bool:
    """Whether the learner's failing value equals ``value`` (what a known mistake computes)."""
    actual = actual_tensor(failure)
    value = torch.as_tensor(value).detach().double()
    return actual.shape == value.shape and bool(torch.allclose(actual, value, rtol=rtol, atol=atol))


def differs(first: torch.Tensor, second: torch.Tensor) -> bool:
    """Whether a known mistake changes the result on this input (at the checks' own float64 tolerance)."""
    return first.shape != second.shape or not torch.allclose(first.double(), second.double(), rtol=FLOAT64_RTOL,
                                                             atol=FLOAT64_ATOL, equal_nan=True)  # fmt: skip


def raised(failure: Failure, kind: type[BaseException], *words: str) -> bool:
    """Whether the learner's code raised ``kind`` with all of ``words`` in its message."""
    return isinstance(failure.error, kind) and all(w in str(failure.error) for w in words)


def missing_gradient(text: str, *, parameters: bool | None = None) -> Hint:
    """A hint for a gradient that never arrived (``None``): ``.data``, ``.item()``, ``torch.tensor(...)``.

    ``parameters``: only for a parameter's gradient (True), only for an input's (False), or for either.
    """

    def matches(failure: Failure) -> bool:
        if not failure.label.startswith("gradient of") or failure.actual is not None:
            return False
        about_parameter = failure.label.startswith("gradient of parameter")
        return parameters is None or parameters == about_parameter

    return Hint(text, matches)
