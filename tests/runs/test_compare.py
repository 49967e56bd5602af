"""`compare`: the differing settings, final and best metrics side by side, one overlay PNG per metric."""

import json
import subprocess
import sys

import pytest

from divekit.errors import ConfigError
from divekit.runs import resolve_config, train
from divekit.runs.compare import compare_runs, short_names


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    for lr, epochs in ((0.01, 2), (0.001, 3)):
        config = resolve_config("mlp", overrides={"train.progress": False, "train.epochs": epochs,
                                                  "data.val_split": 0.1, "optim.lr": lr})  # fmt: skip
        train(config, out_dir=root / f"lr{lr}", log=lambda m: None)
    return [root / "lr0.01", root / "lr0.001"]


def test_only_the_settings_that_differ(two_runs):
    diffs = compare_runs(two_runs).differences()
    assert diffs["optim.lr"] == [0.01, 0.001] and diffs["train.epochs"] == [2, 3]
    assert "data.name" not in diffs and "model.name" not in diffs


def test_final_and_best_metrics_are_the_runs_own(two_runs):
    comparison = compare_runs(two_runs)
    metrics = comparison.metrics()
    for i, folder in enumerate(two_runs):
        history = json.loads((folder / "metrics.json").read_text())
        for key in ("train_loss", "val_acc", "test_acc"):
            assert metrics["final"][key][i] == history[-1][key]
        best = max(history, key=lambda r: r["val_acc"])  # the first epoch with the highest val_acc
        assert metrics["best"]["val_acc"][i] == best["val_acc"]
    assert "train_examples_per_s" not in metrics["final"]


def test_one_png_per_metric(two_runs, tmp_path):
    paths = compare_runs(two_runs).plot(tmp_path / "plots")
    assert sorted(p.name for p in paths) == ["acc.png", "loss.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_prints_tables_and_writes_plots(two_runs, tmp_path):
    out = subprocess.run([sys.executable, "-m", "divekit", "compare", *map(str, two_runs), "--plots",
                          str(tmp_path / "p")], capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.splitlines()[0].split() == ["setting", "lr0.01", "lr0.001"]
    assert "final metric" in out and "best metric" in out and (tmp_path / "p" / "loss.png").is_file()
    listing = subprocess.run([sys.executable, "-m", "divekit", "runs", str(two_runs[0].parent), "--sort", "val_loss"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert len(listing.splitlines()) == 3 and "completed" in listing


def test_fewer_than_two_or_a_repeated_run_is_refused(two_runs):
    with pytest.raises(ConfigError, match="two or more"):
        compare_runs(two_runs[:1])
    with pytest.raises(ConfigError, match="named twice"):
        compare_runs([two_runs[0], two_runs[0]])


def test_clashing_folder_names_keep_more_of_their_path(tmp_path):
    assert short_names([tmp_path / "a" / "run", tmp_path / "b" / "run"]) == ["a/run", "b/run"]
    assert short_names([tmp_path / "x", tmp_path / "y"]) == ["x", "y"]
