"""A learner's file is checked in a child process under time and memory limits; the parent never runs it."""

from __future__ import annotations

import sys
import textwrap

import pytest

from divekit.check import check
from divekit.check.sandbox import CheckStopped
from divekit.errors import ConfigError

CORR2D = """
import torch

def corr2d(X, K):
    print("learners print things")  # goes to stderr, not into the report
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K){reduce}
    return Y

def forever(X, K):
    while True:
        pass

def hungry(X, K):
    kept = []
    while True:
        kept.append(torch.ones(50_000_000, dtype=torch.float64))

def one_argument(X):
    return X
"""


@pytest.fixture
def learner_file(tmp_path):
    def write(reduce: str = ".sum()", *, name: str = "mine.py", text: str | None = None):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text if text is not None else CORR2D.format(reduce=reduce)))
        return path

    return write


def test_a_correct_file_passes_and_the_report_names_its_hash(learner_file):
    from divekit.userfile import file_sha256

    path = learner_file()
    report = check(f"{path}:corr2d", max_examples=10)
    assert report.passed, str(report)
    assert report.source == {"name": "corr2d", "path": str(path.resolve()), "sha256": file_sha256(path)}
    assert report.concept == "corr2d"  # inferred from the name
    assert not any(getattr(m, "__file__", None) == str(path.resolve()) for m in list(sys.modules.values()))


def test_an_endless_loop_is_stopped_by_the_time_limit(learner_file):
    report = check(f"{learner_file()}:forever", "corr2d", time_limit=2)
    assert report.exit_code == 1
    assert report.limit.startswith("the time limit of 2 s was hit") and "while checking" in report.limit
    assert report.results[0].status == "fail" and report.results[-1].status == "not run"


def test_an_unbounded_allocation_is_stopped_by_the_memory_limit(learner_file):
    report = check(f"{learner_file()}:hungry", "corr2d", memory_limit=300 * 1024**2)
    assert report.exit_code == 1 and report.limit.startswith("the memory limit of 300 MiB was hit")


def test_a_file_that_loops_while_importing(learner_file):
    path = learner_file(text="while True:\n    pass\n")
    with pytest.raises(CheckStopped, match="importing the file was stopped: the time limit of 2 s") as err:
        check(f"{path}:corr2d", time_limit=2)
    assert err.value.exit_code == 1


def test_a_signature_that_does_not_fit_is_exit_2_naming_the_expected_one(learner_file):
    with pytest.raises(ConfigError, match=r"one_argument does not fit corr2d: expected corr2d\(X, K\)") as err:
        check(f"{learner_file()}:one_argument", "corr2d")
    assert err.value.exit_code == 2


def test_a_missing_file_is_refused_before_any_child_starts(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        check(f"{tmp_path / 'absent.py'}:corr2d")
    with pytest.raises(ConfigError, match="must be positive"):
        check(f"{tmp_path / 'absent.py'}:corr2d", time_limit=0)
