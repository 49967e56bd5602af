"""What the checker's own tests share: a learner's submission, and what the checker must say about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from divekit.check import DEFAULT_EXAMPLES, check
from divekit.check.report import FAIL, Report

EXAMPLES = DEFAULT_EXAMPLES  # the tests run the checker as learners do


@dataclass(frozen=True)
class Case:
    """A submission for ``concept``: accepted when ``hint`` is None, else rejected with a hint containing it.

    ``mistake`` says in words what is wrong (for the table in docs/check.md).
    """

    concept: str
    obj: Any
    hint: str | None = None
    mistake: str = ""

    @property
    def name(self) -> str:
        return getattr(self.obj, "__name__", type(self.obj).__name__)


def case_id(case: Case) -> str:
    return f"{case.concept}:{case.name}"


def verify(case: Case, *, max_examples: int = EXAMPLES) -> Report:
    """Check the submission and assert the verdict (and hint) the case expects."""
    report = check(case.obj, case.concept, max_examples=max_examples)
    if case.hint is None:
        assert report.passed, f"a correct {case.concept} was rejected:\n{report}"
        return report
    assert report.exit_code == 1 and any(r.status == FAIL for r in report.results), f"not rejected:\n{report}"
    assert any(case.hint in hint for hint in report.hints), f"expected a hint with {case.hint!r}:\n{report}"
    return report
