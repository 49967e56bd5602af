"""How long ``divekit check`` takes per concept, and how many wrong implementations it catches.

For every concept of ``divekit check --list`` this runs, in this process and
with the learner's settings (40 random examples per property, seed 0):

- a full check of each correct implementation of the checker's own test
  suite (the reference and an independent one): every property passes, so
  every example runs, the slowest case for a correct submission;
- every deliberately wrong implementation of that suite, counting those
  rejected with the hint the suite expects.

It also times one end-to-end ``python -m divekit check FILE:NAME`` (a child
process, torch imported in it) to show what the sandbox adds, and prints
a Markdown table (the one in docs/check.md). Times are CPU seconds (what the
check costs, whatever else the machine runs) and, in brackets, wall-clock
seconds, with the load average before and after.

    flock /work/cpu.lock python benchmarks/check_timing.py
    python benchmarks/check_timing.py --concept corr2d   # one row
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from divekit.check import check, concepts  # noqa: E402
from tests.check.catalogue import (test_attention, test_basics, test_conv, test_metrics, test_multihead,  # noqa: E402
                                   test_norm, test_pooling, test_recurrent, test_text)  # fmt: skip

SUITES = (test_attention, test_basics, test_conv, test_metrics, test_multihead, test_norm, test_pooling,
          test_recurrent, test_text)  # fmt: skip
WRONG_CORR2D = "def corr2d(X, K):\n    return X[:X.shape[0] - K.shape[0] + 1, :X.shape[1] - K.shape[1] + 1] * 0\n"


def timed(obj, concept: str):
    """The report, CPU seconds and wall-clock seconds of one full check."""
    wall, cpu = time.perf_counter(), time.process_time()
    report = check(obj, concept)
    return report, time.process_time() - cpu, time.perf_counter() - wall


def row(concept, cases) -> dict:
    right = [case for case in cases if case.hint is None]
    wrong = [case for case in cases if case.hint is not None]
    full = [timed(case.obj, concept)[1:] for case in right]
    caught, wrong_times = 0, []
    for case in wrong:
        report, seconds, _ = timed(case.obj, concept)
        wrong_times.append(seconds)
        if report.exit_code == 1 and any(case.hint in hint for hint in report.hints):
            caught += 1
        else:
            print(f"  NOT CAUGHT: {concept} {case.name} ({case.mistake})", file=sys.stderr)
    return {"concept": concept, "wrong": len(wrong), "caught": caught, "full": max(full),
            "wrong_median": statistics.median(wrong_times), "mistakes": [case.mistake for case in wrong]}  # fmt: skip


def end_to_end() -> tuple[float, float]:
    """CPU and wall seconds of ``python -m divekit check`` on a small wrong corr2d, child process included."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mine.py"
        path.write_text(WRONG_CORR2D)
        env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, "-m", "divekit", "check", f"{path}:corr2d"], env=env, capture_output=True,
                       check=False)  # fmt: skip
        after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - start
        return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concept", help="only this concept")
    args = parser.parse_args()
    cases = defaultdict(list)
    for suite in SUITES:
        for case in suite.CASES:
            cases[case.concept].append(case)
    check(test_conv.corr2d, "corr2d", max_examples=2)  # warm up: imports, hypothesis's first run
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, torch threads while checking: 1, "
          "40 examples per property, seed 0\n")  # fmt: skip
    print("| concept | § | wrong implementations rejected with the expected hint | full check of a correct one, "
          "CPU s (wall s) | rejecting a wrong one, median CPU s | the mistakes |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for concept in concepts():
        if args.concept and concept.name != args.concept:
            continue
        found = row(concept.name, cases[concept.name])
        cpu, wall = found["full"]
        print(f"| `{concept.name}` | {concept.section} | {found['caught']} of {found['wrong']} | {cpu:.2f} ({wall:.2f}) "
              f"| {found['wrong_median']:.2f} | {'; '.join(found['mistakes'])} |", flush=True)  # fmt: skip
    cpu, wall = end_to_end()
    print(f"\nend to end, `python -m divekit check mine.py:corr2d` (a wrong one; parent and child process, torch "
          f"imported in the child): {cpu:.1f} CPU s ({wall:.1f} s wall); load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
