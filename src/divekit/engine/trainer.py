"""The model-agnostic trainer.

It never imports a model, a data set or a task: an
:class:`~divekit.tasks.base.Objective` turns batches into losses and metric
sums, and the trainer runs the loop around it: device placement, the
optimiser and schedule, mixed precision, gradient clipping, NaN/Inf checks,
distributed data parallelism, checkpoints (every epoch, the best one on the
validation split, and on interruption), evaluation of the held-out splits,
callbacks (progress, metric files, curves) and early stopping.

Nothing is read from the device at every step: the loss's finiteness, the
skipped-step count and the metric sums stay on the device and are read every
``train.sync_every`` steps, at epoch ends and before every checkpoint. A
non-finite step is skipped on the device (fused optimisers take a
``found_inf`` flag), so the weights and every checkpoint stay finite.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from divekit.data.batching import ShardedBatches, as_epoch_batches, num_batches
from divekit.device import resolve_device
from divekit.engine import checkpoint as ckpt
from divekit.engine.allocator import kept_freed_memory
from divekit.engine.callbacks import Callback, EpochLog, ProgressBar, RunFiles
from divekit.engine.distributed import (DistContext, agree, all_reduce_sums, all_reduce_tensor, barrier,
                                        failures_as_errors)  # fmt: skip
from divekit.engine.evaluation import default_transfer, evaluate_splits
from divekit.engine.health import StepHealth, report_nonfinite
from divekit.engine.optim import build_optimizer, build_scheduler, clip_gradients, optimizer_step, skips_on_device
from divekit.engine.options import OptimConfig, TrainConfig, choose_monitor
from divekit.engine.result import RunResult
from divekit.engine.signals import stop_requests
from divekit.engine.speed import autocast, compile_model, grad_scaler, use_channels_last, wrap_ddp
from divekit.engine.distributed import PeerFailure  # noqa: F401  (raised from here; importable from here)
from divekit.errors import ConfigError, DivekitError
from divekit.tasks.base import Objective

EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_PREEMPTED = 75  # SIGTERM: EX_TEMPFAIL, "try again": a job script can requeue
SCHEDULES_NEEDING_LENGTH = ("step", "cosine", "onecycle")

Transfer = Callable[..., Any]


class TrainingInterrupted(DivekitError):
    """Training stopped on a signal after saving a checkpoint to resume from."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Progress:
    """Where training is, and the partial sums of the unfinished epoch (device tensors while it runs)."""

    epoch: int = 0
    batch: int = 0
    global_step: int = 0
    sums: dict[str, Any] = field(default_factory=dict)
    train_time: float = 0.0
    bad_steps: int = 0

    def as_state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batch": self.batch, "global_step": self.global_step,
                "sums": floats(self.sums), "train_time": self.train_time, "bad_steps": self.bad_steps}  # fmt: skip


class Trainer:
    """Fit ``model`` with ``objective`` on ``train_data``, evaluating ``eval_data`` after every epoch.

    Args:
        model: the network (already initialised; the trainer moves it).
        objective: the loss and metrics.
        train_data: the training batches: an :class:`~divekit.data.batching.EpochBatches`,
            a ``DataLoader``, a list of batches or a callable returning an iterator.
        eval_data: held-out batches by split name (``val``, ``test``); ``val``
            picks the best checkpoint and drives early stopping, ``test`` is
            only ever reported.
        train, optim: the loop's and the optimiser's settings.
        transfer: ``transfer(batch, device=, channels_last=, train=)`` puts a batch on the
            device, ready for the model (default: every tensor moved).
        out_dir: run folder for checkpoints, metrics and curves; ``None`` keeps everything in memory.
        dist: this process's place in a distributed run.
        param_groups: optimiser parameter groups (default: all trainable parameters).
        callbacks: :class:`Callback` objects, run after the built-in ones.
        log: where one-line messages go (default: stderr, main process only).
        name: what is trained, for the first line of the log.
    """

    def __init__(self, model: nn.Module, objective: Objective, train_data: Any, *,
                 eval_data: Mapping[str, Iterable[Any]] | None = None, train: TrainConfig, optim: OptimConfig,
                 transfer: Transfer | None = None, out_dir: str | Path | None = None, dist: DistContext | None = None,
                 param_groups: Iterable[dict[str, Any]] | None = None, callbacks: Sequence[Callback] = (),
                 log: Callable[[str], None] | None = None, name: str = "model") -> None:  # fmt: skip
        self.train_config, self.optim_config = train.validate(), optim.validate()
        self.objective, self.name = objective, name
        self.dist = dist or DistContext()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self._log = log
        self.device = resolve_device(train.device, local_rank=self.dist.local_rank)
        self.channels_last = use_channels_last(train.channels_last, model, self.device)
        self.raw_model = model.to(self.device, memory_format=torch.channels_last) if self.channels_last else model.to(self.device)
        self.compiled_model = compile_model(self.raw_model) if train.compile else self.raw_model
        self.distributed_model = wrap_ddp(self.compiled_model, self.dist, self.device)
        self.transfer = transfer or default_transfer
        batches = as_epoch_batches(train_data, seed=train.seed)
        self.batches = ShardedBatches(batches, rank=self.dist.rank, world_size=self.dist.world_size) if self.dist.enabled else batches
        self.eval_data = dict(eval_data or {})
        self.steps_per_epoch = num_batches(self.batches)
        if self.steps_per_epoch == 0:
            raise ConfigError("the training data gives no batch: use a smaller batch size or more data")
        if self.steps_per_epoch is None and (optim.schedule in SCHEDULES_NEEDING_LENGTH or optim.warmup_epochs):
            raise ConfigError(f"optim.schedule={optim.schedule!r} and optim.warmup_epochs need the number of batches "
                              "per epoch; give training batches that have a len() (a list or a DataLoader)")  # fmt: skip
        self.optimizer = build_optimizer(param_groups if param_groups is not None else self.raw_model, optim)
        self.scheduler = build_scheduler(self.optimizer, optim, steps_per_epoch=self.steps_per_epoch or 1,
                                         epochs=train.epochs)  # fmt: skip
        self.scaler = grad_scaler(train.precision, self.device)
        self.skip_on_device = self.scaler is None and skips_on_device(self.optimizer)
        self.monitor, self.monitor_mode = choose_monitor(train, objective, splits=self.eval_data)
        self.callbacks = self._default_callbacks() + list(callbacks)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.progress = Progress()
        self._stop_signal: int | None = None
        self.health = StepHealth(self.device)

    # ----------------------------------------------------------------- set-up
    def _default_callbacks(self) -> list[Callback]:
        from divekit.engine.display import NotebookDisplay, resolve_display

        if not self.dist.is_main:
            return []
        display = resolve_display(self.train_config.display)
        callbacks: list[Callback] = [ProgressBar()] if self.train_config.progress and display == "terminal" else []
        if display == "notebook":  # a widget, the epoch lines and a live figure in the cell (not red stderr lines)
            callbacks.append(NotebookDisplay(bar=self.train_config.progress))
        if display != "notebook" or self._log is not None:
            callbacks.append(EpochLog())
        if self.out_dir is not None:
            callbacks.append(RunFiles(self.out_dir))
        if self.train_config.tensorboard:
            from divekit.engine.tensorboard import TensorBoardLogger  # imports tensorboard only when asked

            callbacks.append(TensorBoardLogger.for_trainer(self))
        return callbacks

    def log(self, message: str) -> None:
        if not self.dist.is_main:
            return
        if self._log is not None:
            self._log(message)
        else:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    def header(self) -> str:
        """The run's first line: what trains, for how long, and every setting that changes the numbers."""
        tc = self.train_config
        steps = f"{self.steps_per_epoch} steps each" if self.steps_per_epoch else "steps unknown"
        count = torch.get_num_threads()
        threads = f"{count} thread{'s' if count > 1 else ''}" if self.device.type == "cpu" else str(self.device)
        return (f"{self.name}: {tc.epochs} epochs, {steps}, on {self.device.type} ({threads}); precision {tc.precision}, "
                f"compile {'on' if tc.compile else 'off'}, channels-last {'on' if self.channels_last else 'off'}, "
                f"deterministic {'on' if tc.deterministic else 'off'}, seed {tc.seed}"
                + (f", world size {self.dist.world_size}" if self.dist.enabled else ""))  # fmt: skip

    @property
    def checkpoint_dir(self) -> Path | None:
        return self.out_dir / "checkpoints" if self.out_dir is not None else None

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.train_config.precision, self.device)

    def _each(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # ------------------------------------------------------------ checkpoints
    def _parts(self) -> dict[str, Any]:
        return {"model": self.raw_model, "optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler,
                "objective": self.objective, "batches": self.batches}  # fmt: skip

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/last.pt`` (main process only) after reading the device flags; return its path."""
        self._sync()
        path = self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None
        if path is not None and self.dist.is_main:
            ckpt.save_checkpoint(path, ckpt.training_state(**self._parts(), progress=self.progress.as_state(),
                                                           history=self.history, best=self.best))  # fmt: skip
        barrier(self.dist)
        return path

    def _save_best(self, record: dict[str, Any]) -> None:
        if self.checkpoint_dir is not None and self.dist.is_main:
            ckpt.save_checkpoint(self.checkpoint_dir / "best.pt",
                                 {"model": self.raw_model.state_dict(), "metrics": record, "monitor": self.monitor})  # fmt: skip

    def restore(self, path: str | Path) -> None:
        """Continue from the checkpoint at ``path`` (written by :meth:`save_checkpoint`)."""
        progress, self.history, self.best = ckpt.restore_training_state(Path(path), **self._parts())
        self.progress = Progress(**progress)

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Ask the loop to checkpoint and stop after the current step (as a signal would)."""
        self._stop_signal = signum

    # ---------------------------------------------------------------- the loop
    def fit(self, *, resume_from: str | Path | None = None) -> RunResult:
        """Train for ``train.epochs`` epochs (continuing a checkpoint if given)."""
        if resume_from is not None:
            self.restore(resume_from)
        self.log(self.header())
        self._each("on_fit_start")
        tc = self.train_config
        stop_reason = "completed"
        stops = stop_requests(lambda: self._stop_signal, self.request_stop)
        with failures_as_errors(self.dist, self.checkpoint_dir), stops, kept_freed_memory():
            while self.progress.epoch < tc.epochs:
                self._run_epoch()
                record = self._end_epoch()
                if self._early_stop(record):
                    stop_reason = f"early stopping: {self.monitor} did not improve in {tc.patience} epochs"
                    self.log(stop_reason)
                    break
        return self._finish(stop_reason)

    def _finish(self, stop_reason: str) -> RunResult:
        result = RunResult(self.history, self.best, stop_reason, self.out_dir, self.monitor, model=self.raw_model)
        self._each("on_fit_end", result)
        return result

    def _run_epoch(self) -> None:
        p, tc = self.progress, self.train_config
        self.batches.set_epoch(p.epoch)
        self.distributed_model.train()
        self.objective.begin_epoch(epoch=p.epoch)
        self._each("on_epoch_start", p.epoch)
        started = time.perf_counter() - p.train_time
        for batch in self.batches.iter_from(p.batch):
            self._step(self.transfer(batch, device=self.device, channels_last=self.channels_last, train=True))
            p.batch += 1
            p.global_step += 1
            p.train_time = time.perf_counter() - started
            self._each("on_step_end", p.global_step)
            if p.global_step % tc.sync_every == 0:
                self._sync()
            if tc.checkpoint_every and p.global_step % tc.checkpoint_every == 0:
                self.save_checkpoint()
            if self._should_stop():
                self._interrupt()
        self._synchronize_device()
        p.train_time = time.perf_counter() - started

    def _step(self, batch: Any) -> None:
        """One optimisation step, with no host synchronisation."""
        with self._autocast():
            out = self.objective.train_step(self.distributed_model, batch)
        loss = out.loss
        finite = torch.isfinite(loss.detach())
        count = self._on_device(out.sums.get("count", 1.0))
        if self.dist.enabled:
            # One collective: the global count, and whether any process's loss is non-finite, so every process
            # skips the same steps. DDP averages gradients over processes; weighting each process's mean by its
            # share of the global batch makes that the mean over the whole batch, even for unequal shares.
            totals = all_reduce_tensor(torch.stack([count, (~finite).double()]), self.dist)
            finite = totals[1] == 0
            loss = loss * (count * self.dist.world_size / totals[0]).to(loss.dtype)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        ok = finite & torch.isfinite(clip_gradients(self.optimizer, self.optim_config.clip_grad))
        optimizer_step(self.optimizer, ok, scaler=self.scaler, on_device=self.skip_on_device)
        self.scheduler.step()
        self.health.record(ok)
        sums = self.progress.sums
        for key, value in out.sums.items():
            value = torch.where(ok, self._on_device(value), 0.0)  # a skipped step adds nothing
            sums[key] = sums[key] + value if key in sums else value

    def _on_device(self, value: torch.Tensor | float) -> torch.Tensor:
        """A metric value as a float64 tensor on the device; a Python number is filled in place, not copied
        (a copy from host memory would wait for the device)."""
        if torch.is_tensor(value):
            return value.detach().to(self.device, torch.float64)
        return torch.full((), float(value), dtype=torch.float64, device=self.device)

    def _sync(self) -> None:
        """Read the device-side flags: stop on too many non-finite steps; give callbacks the running metrics."""
        bad, first = self.health.take()
        if bad:
            p = self.progress
            p.bad_steps += bad
            report_nonfinite(bad=bad, first_step=first, total=p.bad_steps, allowed=self.train_config.skip_nonfinite,
                             epoch=p.epoch, epoch_start_step=p.global_step - p.batch,
                             checkpoints=self.checkpoint_dir is not None, log=self.log)  # fmt: skip
        if self.callbacks and self.progress.sums:
            sums = floats(self.progress.sums)
            self._each("on_sync", self.objective.metrics(sums, "train") if sums.get("count") else {})

    def _should_stop(self) -> bool:
        if not self.dist.enabled:
            return self._stop_signal is not None
        # With peers, stop at a step where every process has learnt of it: agreed at each sync.
        if self.progress.global_step % self.train_config.sync_every:
            return False
        (stop,) = agree([self._stop_signal is not None], self.dist, self.device)
        self._stop_signal = self._stop_signal or (signal.SIGINT if stop else None)
        return bool(stop)

    def _interrupt(self) -> None:
        signum = self._stop_signal or signal.SIGINT
        path = self.save_checkpoint()
        self._finish("interrupted")
        p = self.progress
        where = f"epoch {p.epoch + 1}, batch {p.batch}/{self.steps_per_epoch or '?'}"
        saved = f"checkpoint saved to {path}; continue with resume=True" if path else "nothing saved (no run folder)"
        code = EXIT_PREEMPTED if signum == signal.SIGTERM else EXIT_INTERRUPTED
        raise TrainingInterrupted(f"{signal.Signals(signum).name} received at {where}: {saved}", exit_code=code)

    def _synchronize_device(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # once per epoch, for an honest clock

    # ------------------------------------------------------------ evaluation
    def running_rate(self) -> float:
        """Training throughput of the epoch so far, in the objective's units per second (all processes)."""
        count = float(self.progress.sums.get("count", 0.0))
        return count * self.dist.world_size / max(self.progress.train_time, 1e-9)

    def evaluate(self) -> dict[str, float]:
        """Metrics of every held-out split, prefixed ``val_`` / ``test_``."""
        return evaluate_splits(self.compiled_model, self.objective, self.eval_data, device=self.device,
                               transfer=self.transfer, channels_last=self.channels_last, dist=self.dist,
                               autocast=self._autocast())  # fmt: skip

    def _end_epoch(self) -> dict[str, Any]:
        p = self.progress
        self._sync()
        sums = all_reduce_sums(floats(p.sums), self.dist, self.device)
        record: dict[str, Any] = {"epoch": p.epoch + 1, **self.objective.metrics(sums, "train")}
        t0 = time.perf_counter()
        record.update(self.evaluate())
        eval_time = time.perf_counter() - t0
        unit, count = self.objective.unit, sums.get("count", 0.0)
        record.update({
            "lr": self.optimizer.param_groups[0]["lr"],
            f"train_{unit}_per_s": count / p.train_time if p.train_time else 0.0,
            f"epoch_{unit}_per_s": count / (p.train_time + eval_time) if p.train_time else 0.0,
            "step_time_s": p.train_time,
            "epoch_time_s": p.train_time + eval_time,
            "eval_time_s": eval_time,
        })  # fmt: skip
        self.history.append(record)
        improved = self._is_better(record)
        if improved:
            self.best = dict(record)
        self.progress = Progress(epoch=p.epoch + 1, global_step=p.global_step, bad_steps=p.bad_steps)
        if improved:
            self._save_best(record)
        self.save_checkpoint()
        self._each("on_epoch_end", record)
        return record

    def _is_better(self, record: dict[str, Any]) -> bool:
        if self.monitor is None:
            return False
        value = record.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        delta, best = self.train_config.min_delta, self.best[self.monitor]
        return value > best + delta if self.monitor_mode == "max" else value < best - delta

    def _early_stop(self, record: dict[str, Any]) -> bool:
        patience = self.train_config.patience
        if patience is None or self.best is None:
            return False
        return record["epoch"] - self.best["epoch"] >= patience


def floats(sums: dict[str, Any]) -> dict[str, float]:
    """Metric sums read to the host as floats (one device read per value)."""
    return {k: float(v) for k, v in sums.items()}
