"""What a run shows while it trains: a progress bar per epoch and one summary line per epoch."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class EpochBar:
    """A tqdm bar over one epoch's steps, with the running loss, accuracy and throughput.

    It shows nothing when ``enabled`` is false or stderr is not a terminal
    (tqdm's ``disable=None``), so logs and CI output stay clean.
    """

    def __init__(self, *, total: int, done: int, epoch: int, epochs: int, enabled: bool) -> None:
        self.total = total
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True,
                            file=sys.stderr, mininterval=0.5, disable=None)  # fmt: skip

    def step(self, postfix: Callable[[], dict[str, str]]) -> None:
        """Advance one step; refresh the figures about 20 times an epoch (computing them costs a sync)."""
        if self.bar is None:
            return
        self.bar.update(1)
        if self.bar.n % max(1, self.total // 20) == 0 or self.bar.n == self.total:
            self.bar.set_postfix(postfix())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def postfix(metrics: dict[str, float], rate: float, unit: str) -> dict[str, str]:
    """The bar's figures: ``loss``, ``acc`` (or ``ppl``) and ``examples/s``."""
    shown = {k.removeprefix("train_"): f"{v:.3f}" for k, v in metrics.items()}
    return shown | {f"{unit}/s": f"{rate:,.0f}"}


def summary_line(record: dict[str, Any], *, epochs: int, unit: str) -> str:
    """One line per epoch: its metrics, both throughputs and its wall time."""
    parts = [f"epoch {record['epoch']}/{epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k.startswith(("train_", "test_")) and "per_s" not in k]
    parts.append(f"{record[f'train_{unit}_per_s']:,.0f} {unit}/s (steps), {record[f'epoch_{unit}_per_s']:,.0f} (epoch)")
    parts.append(f"{record['epoch_time_s']:.1f}s")
    return "  ".join(parts)
