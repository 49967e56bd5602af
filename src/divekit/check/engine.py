"""Run a concept's properties on a learner's object with hypothesis, and name the mistakes.

Every property runs as a seeded hypothesis test (no example database, no
deadline, a bounded number of examples); its hand-picked edge cases run when
the random examples all pass. On a failure hypothesis shrinks the input: the
smallest failing example is the one it replays last. A hint from the
concept's catalogue is chosen when it explains that smallest failure; when
several do, further examples decide (larger inputs tell similar mistakes apart).
"""

from __future__ import annotations

import contextlib
import inspect
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from divekit.check.compare import Difference, difference, show
from divekit.check.fit import describe
from divekit.check.model import DEFAULT_EXAMPLES, Check, Concept, Failure, Hint, LimitHit, Property, Unrunnable, Variant
from divekit.check.report import FAIL, NOT_RUN, PASS, FailureReport, PropertyResult, Report
from divekit.errors import ConfigError
from divekit.userfile import describe_exception

ALLOCATION_FAILURES = ("can't allocate memory", "not enough memory", "out of memory")


# no "explain" phase: it reruns the smallest failure many times over to annotate it, which the report does not use
PHASES = (Phase.explicit, Phase.generate, Phase.shrink)
SHRINK_BUDGET = 150  # examples tried while shrinking a failure: bounds the time, keeps runs reproducible
EXTRA_EXAMPLES = 12  # further examples run when several hints fit the smallest failure


class _Failed(Exception):
    """Raised inside the hypothesis test so that hypothesis sees a failure (and shrinks it)."""


class _ShrunkEnough(BaseException):
    """Ends shrinking once its budget is spent (a BaseException: hypothesis lets it through).

    The shrinker only tries inputs smaller than the smallest failure so far, so
    the last failure recorded is the smallest found.
    """


def choose_variant(concept: Concept, obj: Any, name: str) -> Variant:
    """The first variant whose signature ``obj`` fits; one-line :class:`ConfigError` (exit 2) if none."""
    for variant in concept.variants:
        if variant.fits(obj):
            return variant
    expected = " or ".join(concept.signatures)
    raise ConfigError(f"{name} does not fit {concept.name}: expected {expected}; {name} is {describe(obj)}")


def run_properties(concept: Concept, variant: Variant, subject: Any, *, max_examples: int, seed: int,
                   source: Path | str | None = None) -> Iterator[PropertyResult]:  # fmt: skip
    """Yield each property's result in turn.

    A property whose ``needs`` did not pass is not run; after an
    :class:`Unrunnable` failure no further property is.
    """
    status: dict[str, str] = {}
    blocked = ""
    for prop in variant.properties:
        unmet = [need for need in prop.needs if status.get(need) != PASS]
        if blocked or unmet:
            reason = blocked or f"checked once {unmet[0]!r} passes"
            status[prop.name] = NOT_RUN
            yield PropertyResult(prop.name, NOT_RUN, reason=reason)
            continue
        result, unrunnable = run_property(prop, subject, concept.hints, max_examples=max_examples,
                                          seed=seed, source=source)  # fmt: skip
        if unrunnable:
            blocked = f"the property {prop.name!r} could not run (see above)"
        status[prop.name] = result.status
        yield result


def run_property(prop: Property, subject: Any, hints: tuple[Hint, ...], *, max_examples: int, seed: int,
                 source: Path | str | None = None) -> tuple[PropertyResult, bool]:  # fmt: skip
    """Run one property: random examples (shrunk on failure), then its edge cases.

    Returns its result and whether it was unrunnable for this object.
    """
    failures: list[Failure] = []
    tried = first_failure = 0

    def test(example: dict[str, Any]) -> None:
        nonlocal tried, first_failure
        if failures and tried - first_failure >= SHRINK_BUDGET:
            raise _ShrunkEnough()
        tried += 1
        failure = evaluate(prop, subject, example, source)
        if failure is not None:
            first_failure = first_failure if failures else tried
            failures.append(failure)
            raise _Failed()

    try:
        _hypothesis(test, prop, max_examples=max_examples, seed=seed, phases=PHASES)()
    except _ShrunkEnough:
        pass
    except Exception:
        if not failures:  # not a failure of the learner's code: a fault of the checker
            raise
    for edge in prop.edge_cases if not failures else ():
        tried += 1
        failure = evaluate(prop, subject, edge, source)
        if failure is not None:
            failures.append(failure)
            break
    if not failures:
        return PropertyResult(prop.name, PASS, examples=tried), False
    smallest = failures[-1]
    hint = pick_hint(hints, failures, lambda: more_failures(prop, subject, seed=seed, source=source))
    report = render_failure(smallest, hint)
    return PropertyResult(prop.name, FAIL, examples=tried, failure=report), isinstance(smallest.error, Unrunnable)


def evaluate(prop: Property, subject: Any, example: dict[str, Any], source: Path | str | None) -> Failure | None:
    """Run the property's checks on one example; the first that fails, or an exception raised, is the failure."""
    context = {"subject": subject}
    try:
        with isolated_state():
            for check in prop.checks(subject, fresh_copy(example)):
                found = verdict(check)
                if found is not None:
                    return Failure(prop.name, example, check.label, check.expected, check.actual, found.text,
                                   found.largest, context=context)  # fmt: skip
    except LimitHit:
        raise
    except MemoryError as err:
        raise LimitHit("memory", "the memory limit") from err
    except (Exception, SystemExit) as err:
        if isinstance(err, RuntimeError) and any(words in str(err) for words in ALLOCATION_FAILURES):
            raise LimitHit("memory", "the memory limit") from err
        if isinstance(err, Unrunnable):
            text = f"cannot run: {err}"
        else:
            text = f"your code raised {describe_exception(err, source)}"
        return Failure(prop.name, example, error=err, error_text=text, context=context)
    return None


def fresh_copy(value: Any) -> Any:
    """A copy of an example the learner's code may change in place without changing what the report shows."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: fresh_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(fresh_copy(v) for v in value)
    return value


def verdict(check: Check) -> Difference | None:
    if check.ok is None:
        return difference(check.expected, check.actual, rtol=check.rtol, atol=check.atol)
    if check.ok:
        return None
    return Difference(f"{_prose(check.actual)}, expected {_prose(check.expected)}")


def _prose(value: Any, digits: int = 4) -> str:
    """A description stays as written; a value is shown."""
    return value if isinstance(value, str) else show(value, digits=digits)


def pick_hint(hints: tuple[Hint, ...], failures: list[Failure],
              more: Callable[[], list[Failure]] = list) -> str:  # fmt: skip
    """The hint that explains the smallest failure and most of the others.

    The smallest input often fits several mistakes (one output channel: torch.cat
    and a merged kernel give the same shape), so when more than one hint
    explains it, ``more()`` supplies further failures to tell them apart.
    """
    smallest = failures[-1]
    matching = [hint for hint in hints if _matches(hint, smallest)]
    if len(matching) < 2:
        return matching[0].text if matching else ""
    sample = failures[:3] + more()
    scores = [sum(_matches(hint, failure) for failure in sample) for hint in matching]
    return matching[scores.index(max(scores))].text


def more_failures(prop: Property, subject: Any, *, seed: int, source: Path | str | None,
                  count: int = EXTRA_EXAMPLES) -> list[Failure]:  # fmt: skip
    """Failures on up to ``count`` further examples (seeded, not shrunk), to tell similar mistakes apart."""
    found: list[Failure] = []

    def record(example: dict[str, Any]) -> None:
        failure = evaluate(prop, subject, example, source)
        if failure is not None:
            found.append(failure)

    _hypothesis(record, prop, max_examples=count, seed=seed + 1, phases=(Phase.generate,))()
    return found


def _hypothesis(test: Callable[[dict[str, Any]], None], prop: Property, *, max_examples: int, seed: int,
                phases: tuple[Phase, ...]) -> Callable[[], None]:  # fmt: skip
    """``test`` as a seeded, quiet hypothesis test over the property's examples: no database, no deadline."""
    configured = settings(max_examples=max_examples, database=None, deadline=None, verbosity=Verbosity.quiet,
                          suppress_health_check=list(HealthCheck), report_multiple_bugs=False, phases=phases)  # fmt: skip
    return hypothesis_seed(seed)(configured(given(prop.examples)(test)))


def _matches(hint: Hint, failure: Failure) -> bool:
    try:
        with isolated_state():
            return bool(hint.matches(failure))
    except LimitHit:
        raise
    except Exception:  # a hint that cannot judge this failure does not match it
        return False


def render_failure(failure: Failure, hint: str) -> FailureReport:
    shown = {name: show(value) for name, value in failure.example.items() if not name.startswith("_")}
    # a small difference needs more digits to be seen at all
    digits = 10 if failure.largest is not None and failure.largest < 1e-3 else 4
    return FailureReport(input=shown, label=failure.label, expected=_prose(failure.expected, digits),
                         actual=_prose(failure.actual, digits), difference=failure.difference,
                         largest_difference=failure.largest, error=failure.error_text, hint=hint)  # fmt: skip


@contextlib.contextmanager
def isolated_state() -> Iterator[None]:
    """float64 by default, gradients on, and the caller's random states put back afterwards."""
    dtype = torch.get_default_dtype()
    python_state, torch_state = random.getstate(), torch.get_rng_state()
    numpy_state = _numpy_state()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.enable_grad():
            yield
    finally:
        torch.set_default_dtype(dtype)
        random.setstate(python_state)
        torch.set_rng_state(torch_state)
        if numpy_state is not None:
            import numpy

            numpy.random.set_state(numpy_state)


def _numpy_state() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is a dependency of divekit
        return None
    return numpy.random.get_state()


def check_object(obj: Any, concept: Concept, *, name: str, mapping: Mapping[str, str] | None = None,
                 max_examples: int = DEFAULT_EXAMPLES, seed: int = 0, source: dict[str, str] | None = None,
                 on_start: Callable[[Report], None] | None = None,
                 on_result: Callable[[PropertyResult], None] | None = None) -> Report:  # fmt: skip
    """Check ``obj`` (named ``name``) in this process; ``on_start``/``on_result`` see the report grow.

    ``source`` describes where ``obj`` came from (``name``, ``path``, ``sha256``).
    """
    start = time.perf_counter()
    variant = choose_variant(concept, obj, name)
    subject = variant.bind(obj, mapping)
    source = source or {"name": name}
    report = Report(concept.name, concept.section, concept.title, variant.signature, source,
                    properties=[p.name for p in variant.properties], seed=seed, max_examples=max_examples)  # fmt: skip
    if on_start is not None:
        on_start(report)
    path = source.get("path") or _source_file(obj)
    with one_thread():
        for result in run_properties(concept, variant, subject, max_examples=max_examples, seed=seed, source=path):
            report.results.append(result)
            report.parameters = mapping_note(subject)
            if on_result is not None:
                on_result(result)
    report.seconds = round(time.perf_counter() - start, 2)
    return report


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread while checking: on tensors this small, waking a thread pool costs more than it saves."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _source_file(obj: Any) -> str | None:
    try:
        return inspect.getsourcefile(obj)
    except (TypeError, OSError):  # a built-in, or a class defined in a notebook (its __main__ has no file)
        return None


def mapping_note(subject: Any) -> str:
    """How a module subject's parameters were matched (empty for functions)."""
    match = getattr(subject, "match", None)
    return match.describe() if match is not None else ""
