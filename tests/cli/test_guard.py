"""The guard for the unexpected (``divekit.cli.main``): one line, a saved traceback, a documented exit code.

Failures are injected by replacing a command's handler with one that raises, since no known input makes
divekit fail this way any more.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from divekit import cli
from divekit.cli import main
from divekit.cli import info, train


def boom(args):
    raise RuntimeError("boom at step 3\nsecond line of the message")


@pytest.fixture(autouse=True)
def _temporary_folder(tmp_path, monkeypatch):
    """Temporary tracebacks land in this test's own folder."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.delenv("DIVEKIT_TRACEBACK", raising=False)


def one_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("divekit: error: "), captured.err
    assert "Traceback" not in captured.err
    return captured.err


def saved_path(err: str) -> Path:
    return Path(err.split("the full traceback is in ")[1].split("; set ")[0])


def test_an_unexpected_exception_is_one_line_with_a_saved_traceback(monkeypatch, capsys, tmp_path):
    """Before: a 20-line traceback and exit status 1."""
    monkeypatch.setattr(info, "run_models", boom)
    assert main(["models"]) == 70 == cli.UNEXPECTED_EXIT
    err = one_line(capsys)
    assert "unexpected RuntimeError in `divekit models` (boom at step 3)" in err and "second line" not in err
    assert "DIVEKIT_TRACEBACK=1" in err and "report it" in err
    path = saved_path(err)
    assert path.parent == tmp_path / "tmp" and path.name.startswith("divekit-traceback-")
    text = path.read_text()
    assert text.startswith("Traceback (most recent call last):") and "in boom" in text and "second line" in text


def test_the_traceback_goes_into_the_run_folder_of_a_command_on_a_run(monkeypatch, capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setattr(train, "run_evaluate", boom)
    assert main(["evaluate", str(run)]) == 70
    path = saved_path(one_line(capsys))
    assert path.parent == run and path.name.startswith("traceback-") and "boom" in path.read_text()


@pytest.mark.parametrize("exists", [True, False])
def test_train_saves_into_its_out_folder_when_it_exists(monkeypatch, capsys, tmp_path, exists):
    out = tmp_path / "out"
    if exists:
        out.mkdir()
    monkeypatch.setattr(train, "run_train", boom)
    assert main(["train", "mlp", "--out", str(out)]) == 70
    path = saved_path(one_line(capsys))
    assert path.parent == (out if exists else tmp_path / "tmp")
    assert out.exists() == exists  # the guard makes no folder


def test_a_read_only_run_folder_falls_back_to_a_temporary_file(monkeypatch, capsys, tmp_path):
    from divekit import io

    def read_only(path, text):
        raise io.DiskWriteError(f"could not write {path}: Read-only file system")

    monkeypatch.setattr(io, "atomic_write_text", read_only)
    monkeypatch.setattr(train, "run_evaluate", boom)
    assert main(["evaluate", str(tmp_path)]) == 70
    assert saved_path(one_line(capsys)).parent == tmp_path / "tmp"


def test_nowhere_to_save_still_gives_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(info, "run_models", boom)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    assert main(["models"]) == 70
    assert "the traceback could not be saved (No such file or directory)" in one_line(capsys)


def test_the_environment_variable_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr(info, "run_models", boom)
    monkeypatch.setenv("DIVEKIT_TRACEBACK", "1")
    assert main(["models"]) == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "RuntimeError: boom at step 3" in err
    assert err.splitlines()[-1].startswith("divekit: error: unexpected RuntimeError")


@pytest.mark.parametrize("error, words", [
    (MemoryError(), "ran out of memory in `divekit data list`; use smaller inputs or batches"),
    (KeyError("x"), "unexpected KeyError in `divekit data list` ('x')"),
    (AssertionError(), "unexpected AssertionError in `divekit data list`, a bug"),
    (OSError(5, "Input/output error"), "unexpected OSError in `divekit data list` ([Errno 5] Input/output error)"),
])  # fmt: skip
def test_every_kind_of_unexpected_error_is_one_line(monkeypatch, capsys, error, words):
    def fail(args):
        raise error

    monkeypatch.setattr(info, "run_data_list", fail)
    assert main(["data", "list"]) == 70
    assert words in one_line(capsys)


def test_expected_outcomes_keep_their_own_codes(monkeypatch, capsys):
    from divekit.errors import ConfigError

    def refuse(args):
        raise ConfigError("bad option")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run_models", refuse)
    assert main(["models"]) == 2 and capsys.readouterr().err == "divekit: error: bad option\n"
    monkeypatch.setattr(info, "run_models", interrupted)
    assert main(["models"]) == 130


def test_a_real_process_exits_with_the_documented_code(tmp_path):
    """The same in a real process, the failure injected before main runs."""
    code = ("import sys; from divekit.cli import info, main\n"
            "info.run_models = lambda args: 1 / 0\n"
            "sys.exit(main(['models']))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmp_path)})  # fmt: skip
    assert done.returncode == 70 and done.stderr.count("\n") == 1
    assert "unexpected ZeroDivisionError in `divekit models` (division by zero)" in done.stderr
    assert len(list(tmp_path.glob("divekit-traceback-*.txt"))) == 1
