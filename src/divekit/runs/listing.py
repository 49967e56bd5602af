"""The run folders under a folder, one summary each: what trained, how far, and how it ended.

A run's status is read from what it leaves behind, never from a process table alone:

- ``running``: its lock (``.lock``) is held by a live process (or by one on another host);
- ``failed``: the lock is left by a process that died (killed, out of memory), or no lock and no
  finished checkpoint: the run stopped on an error (NaN/Inf beyond ``train.skip_nonfinite``, a crash)
  or before its first checkpoint;
- ``interrupted``: no lock, and ``checkpoints/last.pt`` was saved in the middle of an epoch
  (a signal stops a run there, after a checkpoint to resume from);
- ``completed``: every asked epoch is done, or early stopping ended it
  (``train.patience`` epochs without improvement on the validation split).

Reading a checkpoint maps its file (``mmap``), so listing many large runs stays fast.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from divekit.engine.lock import LOCK_NAME, _alive
from divekit.errors import CheckpointError, ConfigError
from divekit.runs.folder import read_run_config

STATUSES = ("completed", "interrupted", "failed", "running")
DEFAULT_METRICS = ("val_acc", "test_acc", "val_ppl", "test_ppl", "val_loss", "test_loss", "train_loss")
HIGHER_IS_BETTER = ("acc", "bleu")


@dataclass
class RunSummary:
    """One run folder at a glance.

    Attributes:
        folder: the run folder.
        model, data: the model's and the data set's names.
        epochs_done, epochs_asked: finished epochs, and ``train.epochs``.
        status: one of :data:`STATUSES`.
        history: the per-epoch records of ``metrics.json``.
        best: the best epoch's record on the validation split (``None`` without one).
        monitor: the metric that chose ``best``.
        config: the saved config, flattened to dotted keys.
    """

    folder: Path
    model: str
    data: str
    epochs_done: int
    epochs_asked: int
    status: str
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    monitor: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, Any]:
        """The last finished epoch's record."""
        return self.history[-1] if self.history else {}

    def value(self, metric: str) -> float | None:
        """``metric`` in the final record (``best_``-prefixed: in the best record)."""
        if metric.startswith("best_"):
            return (self.best or {}).get(metric[5:])
        return self.final.get(metric)


def read_history(folder: Path) -> list[dict[str, Any]]:
    """``metrics.json``, or no records when it is missing or unreadable (a run that never finished an epoch)."""
    try:
        history = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [r for r in history if isinstance(r, dict)] if isinstance(history, list) else []


def read_progress(folder: Path) -> dict[str, Any] | None:
    """The position and best record saved in ``checkpoints/last.pt`` (``None`` when there is none or it is unreadable)."""
    path = folder / "checkpoints" / "last.pt"
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - a truncated or foreign file is a run without a usable checkpoint
        return None
    if not isinstance(state, dict) or not isinstance(state.get("progress"), dict):
        return None
    return {"progress": state["progress"], "best": state.get("best")}


def lock_state(folder: Path) -> str | None:
    """``held`` (a live owner, or one on another host), ``stale`` (its owner died), or ``None`` (no lock)."""
    path = folder / LOCK_NAME
    try:
        owner = json.loads(path.read_text() or "{}")
    except OSError:
        return None
    except ValueError:
        owner = {}
    if owner.get("host") not in (None, socket.gethostname()):
        return "held"
    pid = owner.get("pid")
    return "held" if isinstance(pid, int) and _alive(pid, owner.get("start")) else "stale"


def run_status(lock: str | None, saved: dict[str, Any] | None, *, epochs_asked: int, patience: int | None) -> str:
    """The status of a run (see the module docstring) from its lock and its last checkpoint."""
    if lock == "held":
        return "running"
    if lock == "stale" or saved is None:
        return "failed"
    progress, best = saved["progress"], saved["best"]
    done = int(progress.get("epoch", 0))
    if done >= epochs_asked:
        return "completed"
    if patience is not None and best and done - int(best.get("epoch", done)) >= patience:
        return "completed"
    return "interrupted" if progress.get("batch", 0) else "failed"


def summarize(folder: str | os.PathLike) -> RunSummary:
    """The :class:`RunSummary` of one run folder."""
    from divekit.runs.config import flatten

    folder = Path(folder)
    config = read_run_config(folder)
    saved = read_progress(folder)
    history = read_history(folder)
    status = run_status(lock_state(folder), saved, epochs_asked=config.train.epochs, patience=config.train.patience)
    done = int(saved["progress"].get("epoch", 0)) if saved else len(history)
    best = saved["best"] if saved else None
    monitor = config.train.monitor or _monitor_of(best, history)
    return RunSummary(folder, config.model.name, config.data.name, done, config.train.epochs, status, history, best,
                      monitor, flatten(config.to_dict()))  # fmt: skip


def _monitor_of(best: dict[str, Any] | None, history: list[dict[str, Any]]) -> str | None:
    """The validation metric a best record was chosen on, when the config left it to the task."""
    if not best:
        return None
    for name in ("val_bleu", "val_acc", "val_ppl", "val_loss"):
        if name in best:
            return name
    return None


def find_runs(folder: str | os.PathLike) -> list[Path]:
    """``folder`` itself if it is a run folder, else the run folders directly inside it, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder; name the folder holding your runs (default: runs)")
    if (folder / "config.json").is_file():
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file())


def list_runs(folder: str | os.PathLike = "runs", *, sort: str | None = None) -> list[RunSummary]:
    """A summary of every run folder in ``folder``, sorted by ``sort`` (a metric, best first) if given.

    ``sort`` names a metric of the final epoch (``val_acc``) or of the best
    one (``best_val_acc``); higher is better for accuracies and BLEU, lower
    for the rest. Runs without that metric come last. A folder whose config
    cannot be read is skipped.
    """
    runs = []
    for path in find_runs(folder):
        try:
            runs.append(summarize(path))
        except CheckpointError:
            continue
    if sort is None:
        return runs
    if not any(r.value(sort) is not None for r in runs):
        names = sorted({k for r in runs for k in r.final if k != "epoch"})
        raise ConfigError(f"no run in {folder} has the metric {sort!r}; sort by one of {', '.join(names) or 'none'}")
    sign = -1.0 if higher_is_better(sort) else 1.0
    return sorted(runs, key=lambda r: (r.value(sort) is None, sign * (r.value(sort) or 0.0)))


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` (``val_acc``, ``best_test_loss``...) is better."""
    return metric.rsplit("_", 1)[-1] in HIGHER_IS_BETTER


def shown_metric(runs: list[RunSummary]) -> str | None:
    """The metric a listing shows when none is asked: the runs' monitor, else the first common one present."""
    monitors = {r.monitor for r in runs if r.monitor}
    if len(monitors) == 1:
        return monitors.pop()
    return next((m for m in DEFAULT_METRICS if any(m in r.final for r in runs)), None)


def format_runs(runs: list[RunSummary], *, metric: str | None = None, root: Path | None = None) -> str:
    """The listing as aligned text, one line per run (``metric`` as the last column)."""
    metric = metric or shown_metric(runs)
    header = ["run", "model", "data", "epochs", "status"] + ([metric] if metric else [])
    rows = [header]
    for r in runs:
        name = str(r.folder.relative_to(root)) if root is not None and r.folder != root else str(r.folder)
        row = [name, r.model, r.data, f"{r.epochs_done}/{r.epochs_asked}", r.status]
        if metric:
            value = r.value(metric)
            row.append("-" if value is None else f"{value:.4f}")
        rows.append(row)
    return table(rows)


def table(rows: list[list[str]]) -> str:
    """Rows of cells as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
