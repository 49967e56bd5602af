"""Hooks into the training loop, and the callbacks every run uses: progress bar, epoch lines, run-folder files.

A :class:`Callback` sees the trainer at fixed points. ``on_step_end`` runs
after every step and must not read device values (that would synchronise
the host with the device each step); ``on_sync`` runs every
``train.sync_every`` steps with the running training metrics already read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from divekit.engine.metrics import write_curves, write_metrics
from divekit.engine.progress import EpochBar, postfix, summary_line

if TYPE_CHECKING:
    from divekit.engine.result import RunResult
    from divekit.engine.trainer import Trainer

CURVES_EVERY_S = 30.0  # redraw curves.png during a run at most this often (and always at the end)


class Callback:
    """Hooks into the loop; override what you need."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_step_end(self, trainer: Trainer, step: int) -> None: ...
    def on_sync(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: Trainer, result: RunResult) -> None: ...


class ProgressBar(Callback):
    """A tqdm bar per epoch, with the running training metrics and throughput."""

    def __init__(self) -> None:
        self.bar: EpochBar | None = None

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.bar = EpochBar(total=trainer.steps_per_epoch, done=trainer.progress.batch, epoch=epoch + 1,
                            epochs=trainer.train_config.epochs, enabled=True)  # fmt: skip

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if self.bar is not None:
            self.bar.step()

    def on_sync(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.show(lambda: postfix(metrics, trainer.running_rate(), trainer.objective.unit))

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.close()

    def on_fit_end(self, trainer: Trainer, result: RunResult) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EpochLog(Callback):
    """One line per epoch (metrics, throughput, time) through the trainer's log."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.log(summary_line(record, epochs=trainer.train_config.epochs, unit=trainer.objective.unit))


class RunFiles(Callback):
    """``metrics.csv`` and ``metrics.json`` after every epoch; ``curves.png`` now and then and at the end."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.last_plot = time.monotonic()

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        write_metrics(self.out_dir, trainer.history)
        if time.monotonic() - self.last_plot > CURVES_EVERY_S:  # plotting costs ~0.3 s: not every short epoch
            self.plot(trainer)

    def on_fit_end(self, trainer: Trainer, result: RunResult) -> None:
        if trainer.history:
            self.plot(trainer)

    def plot(self, trainer: Trainer) -> None:
        write_curves(self.out_dir, trainer.history, best_epoch=trainer.best["epoch"] if trainer.best else None,
                     monitor=trainer.monitor)  # fmt: skip
        self.last_plot = time.monotonic()
