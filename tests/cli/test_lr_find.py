"""``divekit lr-find`` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys


def divekit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "divekit", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_lr_find_prints_a_suggestion_and_writes_the_plot(tmp_path):
    done = divekit("lr-find", "softmax", "--steps", "20", "--batch-size", "64", "--out", "sweep.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("softmax on digits: 20 steps from lr 1e-06 to 10")
    assert lines[1].startswith("suggested lr ") and "whose smoothed loss is within 5% of the lowest" in lines[1]
    assert "--schedule onecycle" in lines[2] and lines[-1] == "sweep.png"
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_lr_find_json_and_a_rule(tmp_path):
    done = divekit("lr-find", "softmax", "--steps", "12", "--rule", "steepest", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    sweep = json.loads(done.stdout)
    assert sweep["suggestion"] == sweep["candidates"]["steepest"] and len(sweep["losses"]) == 12
    assert (tmp_path / "lr-find-softmax.png").is_file()


def test_bad_options_are_one_line(tmp_path):
    done = divekit("lr-find", "softmax", "--start-lr", "1", "--end-lr", "0.1", cwd=tmp_path)
    assert done.returncode != 0 and done.stderr.count("\n") == 1
    assert "divekit: error: the sweep needs 0 < --start-lr < --end-lr, got 1.0 and 0.1" in done.stderr
