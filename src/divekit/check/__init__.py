"""``divekit check``: a learner's own from-scratch code, checked against divekit's reference.

    >>> from divekit.check import check
    >>> check(corr2d, "corr2d")            # an object you have: runs here, without limits
    >>> check("mine.py:corr2d", "corr2d")  # a file: runs in a child process with time and memory limits

Each concept of the notes (``corr2d``, ``batch-norm``, ``rnn``, ``masked-softmax``,
``bleu``...; see :func:`concepts`) has properties that a correct implementation
satisfies, tested with hypothesis on seeded random examples and edge cases;
a failure reports the smallest failing input, the expected and actual values
and, for a known mistake, a hint.

Importing this package is cheap; torch and the catalogue load on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from divekit.check.model import DEFAULT_EXAMPLES, DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT, Concept

if TYPE_CHECKING:
    from divekit.check.report import Report

__all__ = ["DEFAULT_EXAMPLES", "DEFAULT_MEMORY_LIMIT", "DEFAULT_TIME_LIMIT", "check", "concepts", "get_concept"]


def concepts() -> list[Concept]:
    """Every concept that can be checked, in the notes' order."""
    from divekit.check.catalogue import CONCEPTS

    return list(CONCEPTS.values())


def get_concept(name: str) -> Concept:
    """The concept called ``name``; a one-line error naming the closest when there is none."""
    from divekit.check import catalogue

    return catalogue.get_concept(name)


def check(obj: Any, concept: str | None = None, *, mapping: Mapping[str, str] | None = None,
          max_examples: int = DEFAULT_EXAMPLES, seed: int = 0, time_limit: float = DEFAULT_TIME_LIMIT,
          memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Report:  # fmt: skip
    """Check ``obj`` against the reference of ``concept``.

    Args:
        obj: your function or class (checked in this process, with no time or
            memory limit), or ``"path/file.py:NAME"`` (loaded and checked in a
            child process that ``time_limit`` and ``memory_limit`` stop).
        concept: e.g. ``"corr2d"``; by default inferred from the object's name.
        mapping: for a module whose parameters are named differently from the
            reference's: your name -> the reference's (``".T"``: transposed).
        max_examples: random examples per property (the edge cases come on top).
        seed: hypothesis's seed; the same seed shows the same examples.
        time_limit: seconds of wall-clock time for the whole check of a file.
        memory_limit: bytes the child may allocate beyond what it holds after start-up.
    """
    from divekit.check.catalogue import infer_concept
    from divekit.check.engine import check_object
    from divekit.check.sandbox import check_file

    if isinstance(obj, str):
        return check_file(obj, concept, mapping=mapping, max_examples=max_examples, seed=seed,
                          time_limit=time_limit, memory_limit=memory_limit)  # fmt: skip
    name = getattr(obj, "__name__", type(obj).__name__)
    found = get_concept(concept) if concept else infer_concept(name)
    return check_object(obj, found, name=name, mapping=mapping, max_examples=max_examples, seed=seed)
