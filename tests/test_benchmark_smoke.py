"""The speed benchmarks run end to end at tiny sizes, so a change in the code they drive breaks here, not in a
long measurement on a quiet machine. Those that need ``../shared/data`` skip without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import shared_data

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(*argv: str) -> str:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_threads_pitfall_smoke():
    out = run(str(BENCHMARKS / "threads_pitfall.py"), "--data-root", str(shared_data()), "--smoke")
    assert "one core busy" in out and "LeNet" in out


def test_rnn_speed_dry_run():
    out = run(str(BENCHMARKS / "rnn_speed.py"), "--dry-run", "--only", "fast")
    assert "fast path" in out


@pytest.mark.slow
def test_resume_busy_one_trial():
    out = run(str(BENCHMARKS / "resume_busy.py"), "--trials", "1", "--epochs", "40")
    assert "all trials bit-identical" in out and "control" in out
