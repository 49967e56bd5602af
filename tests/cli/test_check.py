"""``divekit check`` on the command line (its module is divekit/cli/check.py)."""

from __future__ import annotations

import json

import pytest

from divekit.cli import main
from divekit.cli.check import parse_bytes
from divekit.errors import ConfigError

WRONG = "def corr2d(X, K):\n    return X[:1, :1] * 0\n"


def test_list_shows_each_concept_with_section_title_and_signature(capsys):
    assert main(["check", "--list"]) == 0
    out = capsys.readouterr().out
    assert "corr2d  §2.1 卷积层\n    corr2d(X, K) -> Y" in out
    assert "batch-norm  §2.6 批量归一化层" in out and "    or BatchNorm(num_features, num_dims)" in out


def test_list_as_json(capsys):
    assert main(["check", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 23 and {"concept", "section", "title", "signatures"} <= set(rows[0])


def test_json_report_of_a_failing_file_exit_1(tmp_path, capsys):
    path = tmp_path / "wrong.py"
    path.write_text(WRONG)
    assert main(["check", f"{path}:corr2d", "--as", "corr2d", "--json", "--examples", "5"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "fail" and data["exit_code"] == 1 and data["concept"] == "corr2d"
    assert data["results"][0]["failure"]["input"]["X"].startswith("tensor(")


def test_json_error_for_a_file_that_cannot_be_loaded_exit_2(tmp_path, capsys):
    assert main(["check", f"{tmp_path / 'absent.py'}:corr2d", "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data == {"status": "error", "exit_code": 2, "message": f"{tmp_path / 'absent.py'}: no such file"}


@pytest.mark.parametrize(("argv", "words"), [
    (["check"], "give FILE.py:NAME to check"),
    (["check", "mine.py"], "expected FILE.py:NAME"),
    (["check", "mine.py:f", "--map", "W"], "--map expects YOURS=REFERENCE"),
    (["check", "mine.py:f", "--memory-limit", "lots"], "--memory-limit expects a size"),
    (["check", "mine.py:f", "--examples", "0"], "--examples must be at least 1"),
])  # fmt: skip
def test_bad_arguments_are_one_line_exit_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


@pytest.mark.parametrize(("text", "size"), [("512M", 512 * 1024**2), ("2G", 2 * 1024**3), ("1.5g", 1536 * 1024**2),
                                            ("4096", 4096), ("64KiB", 64 * 1024)])  # fmt: skip
def test_memory_sizes(text, size):
    assert parse_bytes(text) == size


def test_memory_size_refused():
    with pytest.raises(ConfigError):
        parse_bytes("-1G")
