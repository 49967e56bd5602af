"""The report a learner acts on, and its JSON form for teachers.

Each property passes, fails (with the smallest failing input hypothesis
shrank to, the expected and actual values, the largest difference and a hint
when the mistake is a known one) or was not run. Exit status: 0 when every
property passes, 1 when one fails or a time/memory limit stopped the check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL, NOT_RUN = "pass", "fail", "not run"


@dataclass
class FailureReport:
    """A failure rendered as text, ready to print or to send as JSON."""

    input: dict[str, str]  # name -> shown value
    label: str = ""
    expected: str = ""
    actual: str = ""
    difference: str = ""
    largest_difference: float | None = None
    error: str = ""  # "your code raised ...", or "cannot run: ..."
    hint: str = ""


@dataclass
class PropertyResult:
    name: str
    status: str  # PASS, FAIL or NOT_RUN
    examples: int = 0  # examples tried
    failure: FailureReport | None = None
    reason: str = ""  # why it was not run

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PropertyResult:
        failure = data.get("failure")
        return cls(**{**data, "failure": FailureReport(**failure) if failure else None})


@dataclass
class Report:
    """Everything ``divekit check`` found about one object and one concept."""

    concept: str
    section: str
    title: str
    signature: str
    source: dict[str, str]  # name, and path + sha256 for a file
    properties: list[str] = field(default_factory=list)  # the names of the properties checked, in order
    results: list[PropertyResult] = field(default_factory=list)
    parameters: str = ""  # how a module's parameters were taken from the reference
    seed: int = 0
    max_examples: int = 0
    limit: str = ""  # which time or memory limit stopped the check, if one did
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.limit and bool(self.results) and all(r.status == PASS for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def hints(self) -> list[str]:
        return [r.failure.hint for r in self.results if r.failure and r.failure.hint]

    def result(self, name: str) -> PropertyResult:
        for item in self.results:
            if item.name == name:
                return item
        raise KeyError(f"no property {name!r}; properties: {', '.join(r.name for r in self.results)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"status": PASS if self.passed else FAIL, "exit_code": self.exit_code}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        data = {k: v for k, v in data.items() if k not in ("status", "exit_code")}
        return cls(**{**data, "results": [PropertyResult.from_dict(r) for r in data.get("results", [])]})

    def __str__(self) -> str:
        return format_report(self)

    def __repr__(self) -> str:
        failed = sum(r.status != PASS for r in self.results)
        return f"<Report {self.concept}: {len(self.results) - failed} of {len(self.results)} properties pass>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython / Jupyter shows the text
        printer.text(str(self))


def format_report(report: Report) -> str:
    """The report as text, one block per property."""
    source = report.source.get("path") or "an object in this process"
    lines = [f"divekit check {report.concept} (§{report.section} {report.title}): "
             f"{report.source.get('name', '?')} from {source}"]  # fmt: skip
    if report.source.get("sha256"):
        lines.append(f"  sha256 {report.source['sha256']}")
    lines.append(f"  expected signature: {report.signature}")
    if report.parameters:
        lines.append(f"  {report.parameters}")
    for result in report.results:
        lines.extend(_format_result(result))
    if report.limit:
        lines.append(f"STOPPED: {report.limit}")
    lines.append(_summary(report))
    return "\n".join(lines)


def _format_result(result: PropertyResult) -> list[str]:
    mark = {PASS: "PASS", FAIL: "FAIL", NOT_RUN: "----"}[result.status]
    lines = [f"  {mark}  {result.name}" + (f" ({result.examples} examples)" if result.status == PASS else "")]
    if result.reason:
        lines.append(f"        {'not run' if result.status == NOT_RUN else 'stopped'}: {result.reason}")
    failure = result.failure
    if failure is None:
        return lines
    lines.append("        smallest failing input:")
    lines.extend(f"          {name} = {value}" for name, value in failure.input.items())
    if failure.error:
        lines.append(f"        {failure.error}")
    else:
        lines.append(f"        {failure.label}: {failure.difference}")
        if not (failure.expected in failure.difference and failure.actual in failure.difference):
            lines.append(f"          expected: {failure.expected}")
            lines.append(f"          actual:   {failure.actual}")
    if failure.hint:
        lines.append(f"        hint: {failure.hint}")
    return lines


def _summary(report: Report) -> str:
    failed = [r for r in report.results if r.status == FAIL]
    if report.passed:
        return (f"OK: all {len(report.results)} properties pass "
                f"(up to {report.max_examples} examples each, seed {report.seed}, {report.seconds:.1f} s)")  # fmt: skip
    return (f"FAILED: {len(failed)} of {len(report.results)} properties fail "
            f"(seed {report.seed}; rerun with the same seed to see the same examples)")  # fmt: skip
