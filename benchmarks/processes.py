"""Timing whole commands as processes on a shared machine: wall time, CPU time, the load beside them.

Wall time is what a user waits; CPU time (the child's user + system time,
from ``getrusage(RUSAGE_CHILDREN)``) is what the command itself spent, and
other processes disturb it far less than the wall clock. Every measurement
records the 1-minute load average at its start, so a reader can tell a
quiet-machine number from a loaded one.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import resource
import statistics
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Timed:
    """One process run: its wall time, CPU time (user + system), exit status, load at start, and output."""

    wall_s: float
    cpu_s: float
    returncode: int
    load: float
    stdout: str
    stderr: str


def children_cpu() -> float:
    """User + system seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
              timeout: float | None = None) -> Timed:  # fmt: skip
    """Run ``argv`` to completion (one at a time: the CPU time is the difference of the children's totals)."""
    load = os.getloadavg()[0]
    cpu_before, started = children_cpu(), time.perf_counter()
    done = subprocess.run(argv, env=dict(env) if env is not None else None, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    wall = time.perf_counter() - started
    return Timed(wall, children_cpu() - cpu_before, done.returncode, load, done.stdout, done.stderr)


def with_pythonpath(src: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment with ``src`` first on ``PYTHONPATH`` (which divekit the child imports) and ``extra`` set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra or {})
    return env


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_note() -> str:
    """The load averages now, for the printed report."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


HEADER_THREADS = re.compile(r"\((\d+) threads?\)")  # a run's first line: "... on cpu (2 threads); ..."


def header_threads(text: str) -> int | None:
    """The thread count a divekit run printed in its first line, found in ``text``; ``None`` if absent."""
    found = HEADER_THREADS.search(text)
    return int(found[1]) if found else None


def spin(stop: multiprocessing.synchronize.Event) -> None:
    """A pure-Python loop that keeps one core busy until ``stop`` is set."""
    while not stop.is_set():
        sum(range(10_000))


@contextlib.contextmanager
def one_core_busy(settle_s: float = 1.0) -> Iterator[None]:
    """A second process keeps one core busy while the block runs (for ``settle_s`` before it starts, so the load
    is sustained, not a blip); it is stopped afterwards, whatever happens."""
    stop = multiprocessing.Event()
    competitor = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
    competitor.start()
    try:
        time.sleep(settle_s)
        yield
    finally:
        stop.set()
        competitor.join()


def run_history(folder: Path) -> list[dict]:
    """The per-epoch records of the divekit run in ``folder`` (its ``metrics.json``)."""
    history = json.loads((folder / "metrics.json").read_text())
    return history["history"] if isinstance(history, dict) else history
