"""What a run shows while it trains: a progress bar per epoch, one line per epoch, the final summary.

One function, :func:`format_metrics`, formats the metrics of a record for all three.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

SPLITS = ("train", "val", "test")


def metric_items(record: dict[str, Any]) -> list[tuple[str, float]]:
    """The ``train_*``, ``val_*`` and ``test_*`` metrics of a record (not throughputs), in split order."""
    return [(k, v) for split in SPLITS for k, v in record.items()
            if k.startswith(split + "_") and "per_s" not in k]  # fmt: skip


def format_metrics(record: dict[str, Any], *, digits: int = 4) -> str:
    """``train_loss 0.3012  train_acc 0.8912  val_loss ...``."""
    return "  ".join(f"{k} {v:.{digits}f}" for k, v in metric_items(record))


def summary_line(record: dict[str, Any], *, epochs: int, unit: str) -> str:
    """One line per epoch: its metrics, both throughputs and its wall time."""
    return "  ".join([
        f"epoch {record['epoch']}/{epochs}",
        format_metrics(record),
        f"{record[f'train_{unit}_per_s']:,.0f} {unit}/s (steps), {record[f'epoch_{unit}_per_s']:,.0f} (epoch)",
        f"{record['epoch_time_s']:.1f}s",
    ])  # fmt: skip


class EpochBar:
    """A tqdm bar over one epoch's steps; its figures are refreshed when the trainer reads them.

    It shows nothing when ``enabled`` is false or stderr is not a terminal
    (tqdm's ``disable=None``), so logs and CI output stay clean.
    """

    def __init__(self, *, total: int | None, done: int, epoch: int, epochs: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True,
                            file=sys.stderr, mininterval=0.5, disable=None)  # fmt: skip

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def show(self, figures: Callable[[], dict[str, str]]) -> None:
        """Show the running figures (computed only if the bar is visible)."""
        if self.bar is not None:
            self.bar.set_postfix(figures())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def postfix(metrics: dict[str, float], rate: float, unit: str) -> dict[str, str]:
    """The bar's figures: ``loss``, ``acc`` (or ``ppl``) and ``examples/s``."""
    shown = {k.removeprefix("train_"): f"{v:.3f}" for k, v in metrics.items()}
    return shown | {f"{unit}/s": f"{rate:,.0f}"}
