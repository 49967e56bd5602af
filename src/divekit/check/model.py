"""What a concept check is made of: concepts, signature variants, properties, hints.

A :class:`Concept` (``corr2d``) has one or more :class:`Variant` s, the
signatures a learner may reasonably write (the book's ``batch_norm`` function
or a ``BatchNorm`` module). The first variant whose ``fits`` accepts the
learner's object is used; it turns the object into a *subject* with ``bind``
and lists the :class:`Property` s to test. A property draws examples from a
hypothesis strategy and, for one example, yields :class:`Check` s: a labelled
expected value (from divekit's reference) and the learner's actual value.
When a check fails, the concept's :class:`Hint` s are matched against the
:class:`Failure` to name the mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Example = dict[str, Any]
Mapping_ = Mapping[str, str] | None  # learner parameter name -> reference name (".T": transposed)

DEFAULT_EXAMPLES = 40  # random examples per property, on top of its edge cases
DEFAULT_TIME_LIMIT = 60.0  # seconds for the whole check of one concept in a child (a correct one takes a few)
DEFAULT_MEMORY_LIMIT = 2 * 1024**3  # bytes the child may map beyond what it holds after importing torch
FLOAT64_RTOL = 1e-7
FLOAT64_ATOL = 1e-10


@dataclass(frozen=True)
class Check:
    """One comparison: ``actual`` must equal ``expected`` (within tolerance), or ``ok`` must hold.

    Args:
        label: what is compared, e.g. ``"Y"``, ``"gradient of K"``, ``"running_var"``.
        expected, actual: the values (tensors, numbers, strings, lists of those).
        ok: when given, decides the check instead of comparing (for properties
            that are not an equality, such as "subsequences do not overlap");
            ``expected`` and ``actual`` are then descriptions for the report.
        rtol, atol: tolerances for floating-point values.
    """

    label: str
    expected: Any
    actual: Any
    ok: bool | None = None
    rtol: float = FLOAT64_RTOL
    atol: float = FLOAT64_ATOL


@dataclass
class Failure:
    """A failing example of one property, as hints and the report see it."""

    prop: str  # the property's name
    example: Example  # the inputs, by name
    label: str = ""  # which check failed ("" when the learner's code raised)
    expected: Any = None
    actual: Any = None
    difference: str = ""  # "shape (2, 2), expected (3, 3)" or "largest difference 1 at [0, 1]"
    largest: float | None = None
    error: BaseException | None = None  # what the learner's code raised, if it raised
    error_text: str = ""  # "IndexError: ... (mine.py:4)"
    context: dict[str, Any] = field(default_factory=dict)  # extras for hints (e.g. the learner's module)


@dataclass(frozen=True)
class Hint:
    """A known mistake: ``text`` is shown when ``matches`` recognises it in a failure."""

    text: str
    matches: Callable[[Failure], bool]


@dataclass(frozen=True)
class Property:
    """A property of a correct implementation, tested on examples drawn by hypothesis.

    Args:
        name: what holds, in the report's words.
        examples: a hypothesis strategy drawing one :data:`Example`.
        checks: ``(subject, example) -> Check``s; may raise (the learner's code raised).
        edge_cases: examples tried when the random ones pass (kernel as large as the input, batch 1...).
        needs: properties that must pass before this one means anything (the
            gradients once the output is right); otherwise it is not run.
    """

    name: str
    examples: Any  # hypothesis SearchStrategy[Example]
    checks: Callable[[Any, Example], Iterable[Check]]
    edge_cases: tuple[Example, ...] = ()
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant:
    """One accepted signature of a concept.

    Args:
        signature: as the notes write it, e.g. ``"corr2d(X, K) -> Y"``.
        fits: whether a learner's object has this signature (by inspection).
        properties: what is checked.
        bind: ``(obj, mapping) -> subject``: the object the properties call.
    """

    signature: str
    fits: Callable[[Any], bool]
    properties: tuple[Property, ...]
    bind: Callable[[Any, Mapping_], Any] = lambda obj, mapping: obj


@dataclass(frozen=True)
class Concept:
    """A concept of the notes a learner implements, e.g. ``corr2d`` (§2.1 卷积层)."""

    name: str
    section: str  # "2.1"
    title: str  # "卷积层"
    variants: tuple[Variant, ...]
    hints: tuple[Hint, ...] = ()
    aliases: tuple[str, ...] = ()  # object names that imply this concept (corr2d_multi_in -> ...)

    @property
    def signatures(self) -> list[str]:
        return [v.signature for v in self.variants]


class Unrunnable(Exception):
    """A property cannot run at all for this object (e.g. its parameters match none of the reference's).

    The remaining properties of the check are then reported as not run.
    """


class LimitHit(BaseException):
    """A time or memory limit stopped the learner's code (a BaseException, so nothing swallows it)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # "time" or "memory"
        self.detail = detail
