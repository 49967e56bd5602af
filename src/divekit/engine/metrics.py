"""Per-epoch metrics written to ``metrics.csv``, ``metrics.json`` and ``curves.png``."""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path
from typing import Any

from divekit.io import atomic_write_json, atomic_write_text


def write_metrics(out_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite both metric files atomically from the whole history."""
    atomic_write_json(out_dir / "metrics.json", history)
    columns: list[str] = []
    for record in history:
        columns += [k for k in record if k not in columns]
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(out_dir / "metrics.csv", buffer.getvalue())


def write_curves(out_dir: Path, history: list[dict[str, Any]], *, best_epoch: int | None = None,
                 monitor: str | None = None) -> None:  # fmt: skip
    """Plot every metric the history holds, one panel each; mark the selected epoch."""
    from divekit.plot import plot_curves

    plot_curves(history, out_dir / "curves.png", best_epoch=best_epoch, monitor=monitor)
