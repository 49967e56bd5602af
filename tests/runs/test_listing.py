"""`runs`: one summary per run folder, its status read from the lock and the checkpoints."""

import json
import os
import signal
import socket

import pytest

from divekit.engine.callbacks import Callback
from divekit.engine.trainer import TrainingInterrupted
from divekit.errors import ConfigError
from divekit.runs import resolve_config, train
from divekit.runs.listing import format_runs, list_runs, run_status, summarize

QUIET = {"train.progress": False}


def quiet(message):
    pass


def run(folder, *, callbacks=(), **overrides):
    config = resolve_config("mlp", overrides={**QUIET, "train.epochs": 2, "data.val_split": 0.1, **overrides})
    return train(config, out_dir=folder, log=quiet, callbacks=callbacks)


class StopAt(Callback):
    """Stop at a global step: by a signal (a checkpoint is saved), or by an error (a crash)."""

    def __init__(self, step, how):
        self.step, self.how = step, how

    def on_step_end(self, trainer, step):
        if step == self.step:
            if self.how == "signal":
                trainer.request_stop(signal.SIGINT)
            else:
                raise RuntimeError("simulated crash")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run(root / "a-done", **{"optim.lr": 0.05})
    run(root / "probe", **{"train.epochs": 1})
    with pytest.raises(TrainingInterrupted):
        run(root / "b-stopped", callbacks=[StopAt(50, "signal")])
    with pytest.raises(RuntimeError):
        run(root / "c-crashed", callbacks=[StopAt(60, "crash")])  # after epoch 1's checkpoint (45 steps)
    (root / "notes").mkdir()  # not a run folder: ignored
    return root


def test_each_status_from_what_the_run_left(folders):
    runs = {r.folder.name: r for r in list_runs(folders)}
    assert set(runs) == {"a-done", "b-stopped", "c-crashed", "probe"}
    assert (runs["a-done"].status, runs["a-done"].epochs_done, runs["a-done"].epochs_asked) == ("completed", 2, 2)
    assert (runs["b-stopped"].status, runs["b-stopped"].epochs_done) == ("interrupted", 1)
    assert (runs["c-crashed"].status, runs["c-crashed"].epochs_done) == ("failed", 1)
    assert runs["a-done"].model == "mlp" and runs["a-done"].data == "digits" and runs["a-done"].monitor == "val_acc"
    history = json.loads((folders / "a-done" / "metrics.json").read_text())
    assert runs["a-done"].final == history[-1]


def test_a_held_lock_is_running_and_a_dead_owner_failed(folders, tmp_path):
    lock = folders / "a-done" / ".lock"
    try:
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start": None}))
        assert summarize(folders / "a-done").status == "running"
        lock.write_text(json.dumps({"host": "elsewhere", "pid": 1}))
        assert summarize(folders / "a-done").status == "running"
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345}))  # no such process
        assert summarize(folders / "a-done").status == "failed"
    finally:
        lock.unlink()


def test_early_stopping_is_completed_and_no_checkpoint_is_failed():
    progress = {"epoch": 5, "batch": 0}
    assert run_status(None, {"progress": progress, "best": {"epoch": 2}}, epochs_asked=10, patience=3) == "completed"
    assert run_status(None, {"progress": progress, "best": {"epoch": 3}}, epochs_asked=10, patience=3) == "failed"
    assert run_status(None, None, epochs_asked=10, patience=None) == "failed"


def test_sorting_by_a_metric_best_first(folders):
    by_acc = list_runs(folders, sort="val_acc")
    values = [r.final["val_acc"] for r in by_acc]
    assert values == sorted(values, reverse=True)
    by_loss = list_runs(folders, sort="best_val_loss")
    losses = [r.best["val_loss"] for r in by_loss if r.best]
    assert losses == sorted(losses)
    with pytest.raises(ConfigError, match="no run in .* has the metric 'val_bleu'; sort by one of"):
        list_runs(folders, sort="val_bleu")


def test_the_listing_is_one_aligned_line_per_run(folders):
    text = format_runs(list_runs(folders), root=folders)
    lines = text.splitlines()
    assert lines[0].split() == ["run", "model", "data", "epochs", "status", "val_acc"]
    assert len(lines) == 5 and lines[1].split()[:5] == ["a-done", "mlp", "digits", "2/2", "completed"]
    assert len({line.index("mlp") for line in lines[1:]}) == 1


def test_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder"):
        list_runs(tmp_path / "nothing")
