"""§1.1 模型构造: the notes' ``MyLinear`` (§1.1.3 自定义层) and ``MySequential`` (§1.1.2).

References: :class:`divekit.nn.basics.MyLinear` (``relu(X @ weight + bias)``
with ``weight (in_units, units)``, as the notes write it) and
``nn.Sequential`` itself. The notes' own ``MyLinear`` reads ``.data`` in its
forward pass, so no gradient reaches its parameters: the checker says so.
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from divekit.check.fit import is_module_class, takes_positional
from divekit.check.harness import (ModuleSubject, differs, equals, gradient_checks, missing_gradient, raised,
                                   seeded)  # fmt: skip
from divekit.check.model import Check, Concept, Hint, Property, Unrunnable, Variant
from divekit.check.strategies import seeds, tensors
from divekit.nn.basics import MyLinear

SECTION, TITLE = "1.1", "模型构造"


@st.composite
def linear_examples(draw: Any) -> dict[str, Any]:
    in_units, units, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    return {"in_units": in_units, "units": units, "X": draw(tensors((n, in_units))), "seed": draw(seeds())}


def _linears(subject: ModuleSubject, ex: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    ref = seeded(lambda: MyLinear(ex["in_units"], ex["units"]), ex["seed"])
    return ref, subject.build(ref, ex["in_units"], ex["units"])


def _registered(subject, ex):
    _linears(subject, ex)  # raises Unrunnable when the parameters cannot be matched
    yield Check("parameters", "weight and bias", "matched", ok=True)


def _linear_output(subject, ex):
    ref, ours = _linears(subject, ex)
    yield Check("Y", ref(ex["X"]), ours(ex["X"].clone()))


def _linear_gradients(subject, ex):
    ref, ours = _linears(subject, ex)
    yield from gradient_checks(lambda X: ref(X), lambda X: ours(X), {"X": ex["X"]}, ("X",), seed=ex["seed"],
                               modules=(ref, ours, subject.match))  # fmt: skip


REGISTERED, OUTPUT = ("weight (in_units, units) and bias (units,) are registered parameters",
                      "the output is relu(X @ weight + bias)")  # fmt: skip
LINEAR_PROPERTIES = (
    Property(REGISTERED, linear_examples(), _registered),
    Property(OUTPUT, linear_examples(), _linear_output),
    Property("gradients reach weight, bias and X (equal to the reference's)", linear_examples(),
             _linear_gradients, needs=(OUTPUT,)),
)  # fmt: skip


def _linear_mistake(mistake):
    def matches(failure) -> bool:
        ex = failure.example
        ref = seeded(lambda: MyLinear(ex["in_units"], ex["units"]), ex["seed"])
        wrong = mistake(ex["X"], ref.weight, ref.bias)
        return failure.label == "Y" and differs(wrong, ref(ex["X"])) and equals(failure, wrong)

    return matches


def _plain_tensor_attribute(failure) -> bool:
    if not isinstance(failure.error, Unrunnable):
        return False
    module = failure.context["subject"].cls(failure.example["in_units"], failure.example["units"])
    return any(isinstance(v, torch.Tensor) and not isinstance(v, nn.Parameter) for v in vars(module).values())


LINEAR = Concept(
    "linear", SECTION + ".3", "自定义层（实现nn.Linear）",
    (Variant("MyLinear(in_units, units): weight (in_units, units), bias (units,); forward(X) = "
             "relu(X @ weight + bias)", lambda obj: is_module_class(obj, 2), LINEAR_PROPERTIES, ModuleSubject),),
    (missing_gradient("`.data` detaches the parameter: no gradient reaches it (the notes' MyLinear has this "
                      "one); use self.weight and self.bias themselves in forward", parameters=True),
     Hint("a plain tensor (torch.randn(..., requires_grad=True)) is not a parameter: wrap it in nn.Parameter so "
          "parameters() and the optimizer see it", _plain_tensor_attribute),
     Hint("self.bias is not defined: the notes create it as self.bais (a typo); name it bias",
          lambda f: raised(f, AttributeError, "bias")),
     Hint("the ReLU is missing: the notes' MyLinear returns F.relu(linear)",
          _linear_mistake(lambda X, W, b: X @ W + b)),
     Hint("the ReLU comes before the bias: add the bias first, then F.relu(X @ weight + bias)",
          _linear_mistake(lambda X, W, b: torch.relu(X @ W) + b))),
    aliases=("MyLinear",),
)  # fmt: skip


# ----------------------------------------------------------------------------- MySequential
@st.composite
def stacks(draw: Any, *, repeated: bool = False) -> dict[str, Any]:
    """Module specs such as ``[("Linear", 3, 2), ("ReLU",)]``; ``repeated``: one module object given twice."""
    width = start = draw(st.integers(1, 4))
    layers: list = [("Linear", width, width), ("ReLU",), "repeat 0"] if repeated else []
    for _ in range(0 if repeated else draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("Linear", "ReLU", "Tanh")))
        if kind == "Linear":
            out = draw(st.integers(1, 4))
            layers.append((kind, width, out))
            width = out
        else:
            layers.append((kind,))
    return {"modules": layers, "X": draw(tensors((draw(st.integers(1, 3)), start))), "seed": draw(seeds())}


def build_modules(specs: list, seed: int) -> list[nn.Module]:
    """The modules an example describes, with seeded weights; ``"repeat i"`` is module ``i`` again."""
    modules: list[nn.Module] = []
    for index, spec in enumerate(specs):
        if isinstance(spec, str):
            modules.append(modules[int(spec.split()[1])])
        elif spec[0] == "Linear":
            modules.append(seeded(lambda spec=spec: nn.Linear(spec[1], spec[2]), seed + index))
        else:
            modules.append(getattr(nn, spec[0])())
    return modules


def _sequential_output(cls, ex):
    modules = build_modules(ex["modules"], ex["seed"])
    yield Check("Y", nn.Sequential(*modules)(ex["X"]), cls(*modules)(ex["X"].clone()))


def _sequential_parameters(cls, ex):
    modules = build_modules(ex["modules"], ex["seed"])
    expected = list(nn.Sequential(*modules).parameters())
    found = list(cls(*modules).parameters())
    yield Check("parameters()", f"the {len(expected)} parameters of the modules, in order",
                f"{len(found)} parameters", ok=[id(p) for p in found] == [id(p) for p in expected])


SEQUENTIAL_PROPERTIES = (
    Property("the output applies the modules in the order given (equals nn.Sequential's)", stacks(),
             _sequential_output),
    Property("parameters() lists every module's parameters, in order (so an optimizer trains them)", stacks(),
             _sequential_parameters),
    Property("a module given twice runs twice (MySequential(a, ReLU(), a))", stacks(repeated=True),
             _sequential_output),
)  # fmt: skip


def _applied(failure, order) -> bool:
    modules = build_modules(failure.example["modules"], failure.example["seed"])
    X = failure.example["X"]
    try:
        wrong = order(modules, X)
    except RuntimeError:
        return failure.error is not None  # the mistake fails on this input too
    return failure.label == "Y" and differs(wrong, nn.Sequential(*modules)(X)) and equals(failure, wrong)


def _each_on_input(modules, X):
    return [m(X) for m in modules][-1]


def _reversed(modules, X):
    return nn.Sequential(*reversed(modules))(X)


def _unique(modules, X):
    return nn.Sequential(*dict.fromkeys(modules))(X)


SEQUENTIAL = Concept(
    "sequential", SECTION + ".2", "实现nn.Sequential",
    (Variant("MySequential(*args): forward(X) runs each module on the previous one's output",
             lambda obj: is_module_class(obj) and takes_positional(obj, 3), SEQUENTIAL_PROPERTIES),),
    (Hint("modules kept in a plain list or dict are not registered: parameters() misses them; register each with "
          "self.add_module(str(i), module) (or self._modules[str(i)] = module)",
          lambda f: f.label == "parameters()" and f.actual == "0 parameters"),
     Hint("a module itself is used as the key of self._modules (as in the notes): keys must be strings, "
          "self._modules[str(i)] = module", lambda f: raised(f, TypeError, "str")),
     Hint("the same module given twice runs only once: one key per position, str(i), not the module itself",
          lambda f: _applied(f, _unique)),
     Hint("each module must take the previous module's output: X = module(X)", lambda f: _applied(f, _each_on_input)),
     Hint("forward returns inside the loop, after the first module: return X after the loop",
          lambda f: _applied(f, lambda modules, X: modules[0](X))),
     Hint("the modules run in reverse order", lambda f: _applied(f, _reversed))),
    aliases=("MySequential",),
)  # fmt: skip

CONCEPTS = (LINEAR, SEQUENTIAL)
