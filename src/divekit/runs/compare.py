"""Compare runs: the settings that differ, the final and best metrics side by side, overlaid curves.

``compare_runs(["runs/a", "runs/b"])`` reads each folder's ``config.json``,
``metrics.json`` and the best record of its last checkpoint (see
:mod:`divekit.runs.listing`). :meth:`Comparison.plot` draws one PNG per
metric (``loss.png``, ``acc.png``...) with every run's curves on one axis:
a colour per run, a line style per split (train solid, validation dash-dot,
test dashed).
"""

from __future__ import annotations

import io as _io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divekit.errors import ConfigError
from divekit.io import atomic_write_bytes
from divekit.runs.listing import RunSummary, summarize, table

SPLITS = ("train", "val", "test")
SPLIT_STYLES = {"train": "-", "val": "-.", "test": "--"}
UNCOMPARED_KEYS = ("model.file_sha256",)  # a hash says nothing a reader can compare


@dataclass
class Comparison:
    """Several runs side by side.

    Attributes:
        runs: the runs' summaries, in the order given.
        names: a short, unique name per run (its folder's name, or more of its path when two clash).
    """

    runs: list[RunSummary]
    names: list[str]

    def differences(self) -> dict[str, list[Any]]:
        """Each config key whose value is not the same in every run -> its value in each run."""
        keys = sorted({k for r in self.runs for k in r.config} - set(UNCOMPARED_KEYS))
        out = {}
        for key in keys:
            values = [r.config.get(key) for r in self.runs]
            if any(v != values[0] for v in values[1:]):
                out[key] = values
        return out

    def metric_keys(self) -> list[str]:
        """The split metrics any run recorded (``train_loss``, ``val_acc``...), throughputs left out."""
        keys: list[str] = []
        for run in self.runs:
            for record in run.history:
                keys += [k for k in record if _is_split_metric(k) and k not in keys]
        return keys

    def metrics(self) -> dict[str, dict[str, list[float | None]]]:
        """``{"final": {metric: per-run values}, "best": {...}}``; ``None`` where a run lacks the metric or a best."""
        keys = self.metric_keys()
        return {
            "final": {k: [r.final.get(k) for r in self.runs] for k in keys},
            "best": {k: [(r.best or {}).get(k) for r in self.runs] for k in keys},
        }

    def metric_names(self) -> list[str]:
        """The metrics without their split (``loss``, ``acc``), one plot each."""
        names: list[str] = []
        for key in self.metric_keys():
            name = key.partition("_")[2]
            names += [name] if name not in names else []
        return names

    def plot(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write ``<metric>.png`` per metric into ``out_dir``, overlaying every run's curves; return the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in self.metric_names():
            path = out / f"{name}.png"
            atomic_write_bytes(path, self.figure_png(name))
            paths.append(path)
        return paths

    def figure_png(self, name: str) -> bytes:
        """One metric's curves for every run and split, as PNG bytes (matplotlib's Figure API, no pyplot)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4.2))
        ax = fig.add_subplot()
        for i, (run, label) in enumerate(zip(self.runs, self.names)):
            color = f"C{i % 10}"
            for split in SPLITS:
                key = f"{split}_{name}"
                points = [(r["epoch"], r[key]) for r in run.history if isinstance(r.get(key), (int, float))]
                if points:
                    epochs, values = zip(*points)
                    ax.plot(epochs, values, SPLIT_STYLES[split], color=color, marker=".", label=f"{label} {split}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{name} of {len(self.runs)} runs")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")  # beside the axes: no curve hidden
        buffer = _io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()

    def format(self) -> str:
        """The differing settings, then the final and best metrics, as aligned text."""
        parts = []
        diffs = self.differences()
        rows = [["setting", *self.names]] + [[k, *(_cell(v) for v in vs)] for k, vs in diffs.items()]
        parts.append(table(rows) if diffs else "no setting differs")
        metrics = self.metrics()
        for which in ("final", "best"):
            rows = [[f"{which} metric", *self.names]]
            rows += [[k, *(_cell(v) for v in vs)] for k, vs in metrics[which].items() if any(v is not None for v in vs)]
            if len(rows) > 1:
                parts.append(table(rows))
        epochs = [["epoch (final / best)", *(f"{r.final.get('epoch', '-')} / {(r.best or {}).get('epoch', '-')}"
                                               for r in self.runs)]]  # fmt: skip
        parts.append(table(epochs))
        return "\n\n".join(parts)


def _is_split_metric(key: str) -> bool:
    split, _, name = key.partition("_")
    return split in SPLITS and bool(name) and not name.endswith("_per_s")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def short_names(folders: list[Path]) -> list[str]:
    """Each folder's name, with more of its path where names clash."""
    resolved = [f.resolve() for f in folders]
    depth = 1
    while True:
        names = [str(Path(*f.parts[-depth:])) for f in resolved]
        if len(set(names)) == len(names) or depth >= max(len(f.parts) for f in resolved):
            return names
        depth += 1


def compare_runs(folders: list[str | os.PathLike]) -> Comparison:
    """A :class:`Comparison` of the run folders ``folders`` (two or more)."""
    paths = [Path(f) for f in folders]
    if len(paths) < 2:
        raise ConfigError(f"compare needs two or more run folders, got {len(paths)}")
    if len({p.resolve() for p in paths}) < len(paths):
        raise ConfigError("a run folder is named twice; name each run once")
    return Comparison([summarize(p) for p in paths], short_names(paths))
