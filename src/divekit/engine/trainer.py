"""The model-agnostic trainer.

It never imports a model or a data set: a :class:`~divekit.tasks.base.Task`
turns batches into losses and scores models, and the trainer runs the loop
around it: device placement, optimiser and schedule, mixed precision,
gradient clipping, checks for NaN/Inf, distributed data parallelism,
checkpoints (every epoch, the best one, and on interruption), metrics files,
curves, a progress bar and early stopping.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from divekit.device import resolve_device
from divekit.errors import DivekitError, NonFiniteLossError
from divekit.io import DiskWriteError
from divekit.engine import checkpoint as ckpt
from divekit.runs.config import RunConfig
from divekit.engine.distributed import DistContext, agree, all_reduce_sums, barrier, is_communication_error
from divekit.engine.metrics import write_curves, write_metrics
from divekit.engine.optim import build_optimizer, build_scheduler
from divekit.engine.progress import EpochBar, postfix, summary_line
from divekit.engine.signals import stop_requests
from divekit.engine.speed import autocast, compile_model, grad_scaler, use_channels_last, wrap_ddp
from divekit.tasks.base import Runtime, Task

EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_PREEMPTED = 75  # SIGTERM: EX_TEMPFAIL, "try again": a job script can requeue


CURVES_EVERY_S = 30.0  # redraw curves.png during a run at most this often (and always at the end)


class TrainingInterrupted(DivekitError):
    """Training stopped on a signal after saving a checkpoint to resume from."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class PeerFailure(DivekitError):
    """Another process of a distributed run died; this one stops too."""

    exit_code = 1


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns."""

    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    stop_reason: str
    out_dir: Path | None

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


@dataclass
class _Progress:
    """Where training is, and the partial sums of the unfinished epoch."""

    epoch: int = 0
    batch: int = 0
    global_step: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    step_time: float = 0.0
    epoch_time: float = 0.0
    bad_steps: int = 0


class Callback:
    """Hooks into the loop; override what you need."""

    def on_step_end(self, trainer: Trainer, step: int) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None: ...


class Trainer:
    """Fit ``model`` on ``task`` as ``config`` says, writing into ``out_dir``.

    Args:
        model: the network (already initialised; the trainer moves it).
        task: the learning problem (data, loss, metrics).
        config: the whole run configuration.
        out_dir: run folder for checkpoints, metrics and curves; ``None``
            keeps everything in memory.
        dist: this process's place in a distributed run.
        param_groups: optimiser parameter groups (default: all parameters).
        callbacks: :class:`Callback` objects.
        log: where one-line messages go (default: stderr, main process only).
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        config: RunConfig,
        *,
        out_dir: str | Path | None = None,
        dist: DistContext | None = None,
        param_groups: Iterable[dict[str, Any]] | None = None,
        callbacks: Sequence[Callback] = (),
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.task = task
        self.dist = dist or DistContext()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks)
        self._log = log
        self.device = resolve_device(config.train.device, local_rank=self.dist.local_rank)
        tc = config.train
        self.channels_last = use_channels_last(tc.channels_last, model, self.device)
        self.task.setup(Runtime(self.device, self.channels_last, self.dist.rank, self.dist.world_size))
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = compile_model(self.model) if tc.compile else self.model
        self.train_net = wrap_ddp(self.net, self.dist, self.device)
        self.loader = task.train_batches(seed=tc.seed)
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise DivekitError("the training data gives no batch: use a smaller batch size or more data")
        self.optimizer = build_optimizer(param_groups if param_groups is not None else self.model, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, steps_per_epoch=self.steps_per_epoch,
                                         epochs=tc.epochs)  # fmt: skip
        self.scaler = grad_scaler(tc.precision, self.device)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.progress = _Progress()
        self._stop_signal: int | None = None
        self._last_plot = time.monotonic()

    # ----------------------------------------------------------------- set-up
    def log(self, message: str) -> None:
        if not self.dist.is_main:
            return
        if self._log is not None:
            self._log(message)
        else:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)

    @property
    def checkpoint_dir(self) -> Path | None:
        return self.out_dir / "checkpoints" if self.out_dir is not None else None

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.config.train.precision, self.device)

    # ------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        p = self.progress
        return {
            "model": ckpt.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "progress": {"epoch": p.epoch, "batch": p.batch, "global_step": p.global_step,
                         "sums": _floats(p.sums), "step_time": p.step_time, "epoch_time": p.epoch_time,
                         "bad_steps": p.bad_steps},  # fmt: skip
            "history": self.history,
            "best": self.best,
            "task": self.task.state_dict(),
            "rng": ckpt.rng_state(),
        }

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/last.pt`` (main process only); return its path."""
        path = self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None
        if path is not None and self.dist.is_main:
            ckpt.save_checkpoint(path, self._state())
        barrier(self.dist)
        return path

    def _save_best(self, record: dict[str, Any]) -> None:
        if self.checkpoint_dir is None or not self.dist.is_main:
            return
        ckpt.save_checkpoint(self.checkpoint_dir / "best.pt",
                             {"model": ckpt.unwrap(self.model).state_dict(), "metrics": record})  # fmt: skip

    def restore(self, path: str | Path) -> None:
        """Continue from the checkpoint at ``path`` (written by :meth:`save_checkpoint`)."""
        state = ckpt.load_checkpoint(Path(path))
        ckpt.load_model_state(self.model, state["model"], source=str(path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.progress = _Progress(**state["progress"])
        self.history = list(state["history"])
        self.best = state["best"]
        self.task.load_state_dict(state["task"])
        ckpt.set_rng_state(state["rng"])

    # ------------------------------------------------------------- signals
    @contextlib.contextmanager
    def _failures(self):
        """One clear message for a full disk, or for the communication error a dead peer process causes."""
        try:
            yield
        except DiskWriteError as err:
            raise DiskWriteError(f"{err}. Training stopped: free some space, then continue with --resume") from err
        except RuntimeError as err:
            if not (self.dist.enabled and is_communication_error(err)):
                raise
            first = re.sub(r"^\[[^\]]*\]\s*", "", str(err).strip().splitlines()[0]).split(". ")[0][:160]
            kept = f"the last checkpoint ({self.checkpoint_dir / 'last.pt'}) is kept; " if self.checkpoint_dir else ""
            raise PeerFailure(
                f"rank {self.dist.rank}: another process of this distributed run failed or was killed ({first}); "
                f"{kept}restart the run with --resume"
            ) from err

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Ask the loop to checkpoint and stop after the current step (as a signal would)."""
        self._stop_signal = signum

    # ---------------------------------------------------------------- the loop
    def fit(self, *, resume_from: str | Path | None = None) -> FitResult:
        """Train for ``config.train.epochs`` epochs (continuing a checkpoint if given)."""
        if resume_from is not None:
            self.restore(resume_from)
        tc = self.config.train
        stop_reason = "completed"
        with stop_requests(lambda: self._stop_signal, self.request_stop), self._failures():
            while self.progress.epoch < tc.epochs:
                self._run_epoch()
                record = self._end_epoch()
                if self._early_stop(record):
                    stop_reason = f"early stopping: no improvement in {tc.patience} epochs"
                    self.log(stop_reason)
                    break
        if self.out_dir is not None and self.dist.is_main and self.history:
            write_curves(self.out_dir, self.history)
        return FitResult(self.history, self.best, stop_reason, self.out_dir)

    def _run_epoch(self) -> None:
        p = self.progress
        self.loader.set_epoch(p.epoch)
        self.train_net.train()
        self.task.begin_epoch(self.train_net, epoch=p.epoch)
        bar = EpochBar(total=self.steps_per_epoch, done=p.batch, epoch=p.epoch + 1, epochs=self.config.train.epochs,
                       enabled=self.config.train.progress and self.dist.is_main)  # fmt: skip
        started = time.perf_counter() - p.epoch_time
        for batch in self.loader.iter_from(p.batch):
            t0 = time.perf_counter()
            stop = self._step(batch)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            p.step_time += time.perf_counter() - t0
            p.batch += 1
            p.epoch_time = time.perf_counter() - started
            bar.step(self._postfix)
            for cb in self.callbacks:
                cb.on_step_end(self, p.global_step)
            every = self.config.train.checkpoint_every
            if every and p.global_step % every == 0:
                self.save_checkpoint()
            # Alone, stop at once; with peers, at the step where every process learnt of it (agreed in _step).
            if stop or (not self.dist.enabled and self._stop_signal is not None):
                self._interrupt(bar)
        bar.close()

    def _postfix(self) -> dict[str, str]:
        p = self.progress
        sums = _floats(p.sums)
        shown = self.task.metrics(sums, "train") if sums.get("count") else {}
        return postfix(shown, sums.get("count", 0.0) * self.dist.world_size / max(p.step_time, 1e-9), self.task.unit)

    def _step(self, batch: Any) -> bool:
        """One optimisation step; return whether a stop was requested (on any process)."""
        p = self.progress
        with self._autocast():
            out = self.task.train_step(self.train_net, batch)
        count = float(out.sums.get("count", 1.0))
        finite = bool(torch.isfinite(out.loss.detach()).all())
        # One collective per step keeps every process's decisions in step: stop, skip, and the global count.
        stop, bad_loss, total = agree(
            [self._stop_signal is not None, not finite, count], self.dist, self.device)  # fmt: skip
        if bad_loss:
            self._nonfinite("loss")
            return stop
        loss = out.loss
        if self.dist.enabled:
            # DDP averages gradients over processes; weighting each process's mean by its share of the global
            # batch makes the result the mean over the whole batch, even when the shares differ in size.
            loss = loss * (count * self.dist.world_size / total)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        clip = self.config.optim.clip_grad
        params = [q for group in self.optimizer.param_groups for q in group["params"] if q.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else math.inf)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skips the step itself when gradients overflowed
            self.scaler.update()
        elif not bool(torch.isfinite(norm)):
            self.optimizer.zero_grad(set_to_none=True)
            self._nonfinite("gradients")
            return stop
        else:
            self.optimizer.step()
        self.scheduler.step()
        p.global_step += 1
        for key, value in out.sums.items():  # tensors stay on the device: no sync per step
            value = value.detach().double() if torch.is_tensor(value) else float(value)
            p.sums[key] = p.sums.get(key, 0.0) + value
        return stop

    def _nonfinite(self, what: str) -> None:
        p = self.progress
        p.bad_steps += 1
        where = f"epoch {p.epoch + 1}, batch {p.batch + 1} (step {p.global_step + 1})"
        allowed = self.config.train.skip_nonfinite
        if p.bad_steps <= allowed:
            self.log(f"warning: non-finite {what} at {where}; step skipped ({p.bad_steps} of {allowed} allowed)")
            return
        kept = "; the last good checkpoint is kept" if self.checkpoint_dir else ""
        raise NonFiniteLossError(
            f"non-finite {what} (NaN or Inf) at {where}{kept}. Lower the learning rate, clip gradients "
            f"(--clip-grad), or tolerate a few bad steps with --skip-nonfinite N"
        )

    def _interrupt(self, bar: EpochBar) -> None:
        bar.close()
        signum = self._stop_signal or signal.SIGINT
        path = self.save_checkpoint()
        if self.out_dir is not None and self.dist.is_main and self.history:
            write_curves(self.out_dir, self.history)
        p = self.progress
        where = f"epoch {p.epoch + 1}, batch {p.batch}/{self.steps_per_epoch}"
        name = signal.Signals(signum).name
        saved = f"checkpoint saved to {path}; resume with --resume" if path else "nothing saved (no run folder)"
        code = EXIT_PREEMPTED if signum == signal.SIGTERM else EXIT_INTERRUPTED
        raise TrainingInterrupted(f"{name} received at {where}: {saved}", exit_code=code)

    def _end_epoch(self) -> dict[str, Any]:
        p = self.progress
        sums = all_reduce_sums(_floats(p.sums), self.dist, self.device)
        record: dict[str, Any] = {"epoch": p.epoch + 1, **self.task.metrics(sums, "train")}
        t0 = time.perf_counter()
        self.net.eval()
        with torch.no_grad(), self._autocast():
            test = all_reduce_sums(self.task.eval_sums(self.net), self.dist, self.device)
        self.net.train()
        record.update(self.task.metrics(test, "test"))
        eval_time = time.perf_counter() - t0
        unit = self.task.unit
        count = sums.get("count", 0.0)
        record.update({
            "lr": self.optimizer.param_groups[0]["lr"],
            f"train_{unit}_per_s": count / p.step_time if p.step_time else 0.0,
            f"epoch_{unit}_per_s": count / (p.epoch_time + eval_time) if p.epoch_time else 0.0,
            "step_time_s": p.step_time,
            "epoch_time_s": p.epoch_time + eval_time,
            "eval_time_s": eval_time,
        })  # fmt: skip
        self.history.append(record)
        improved = self._is_better(record)
        if improved:
            self.best = dict(record)
        self.progress = _Progress(epoch=p.epoch + 1, global_step=p.global_step, bad_steps=p.bad_steps)
        if improved:
            self._save_best(record)
        self.save_checkpoint()
        if self.out_dir is not None and self.dist.is_main:
            write_metrics(self.out_dir, self.history)
            if time.monotonic() - self._last_plot > CURVES_EVERY_S:  # plotting costs ~0.3 s: not every short epoch
                write_curves(self.out_dir, self.history)
                self._last_plot = time.monotonic()
        self.log(summary_line(record, epochs=self.config.train.epochs, unit=self.task.unit))
        for cb in self.callbacks:
            cb.on_epoch_end(self, record)
        return record

    def _is_better(self, record: dict[str, Any]) -> bool:
        key = self.task.monitor
        value = record.get(key)
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        delta = self.config.train.min_delta
        best = self.best[key]
        return value > best + delta if self.task.monitor_mode == "max" else value < best - delta

    def _early_stop(self, record: dict[str, Any]) -> bool:
        patience = self.config.train.patience
        if patience is None or self.best is None:
            return False
        return record["epoch"] - self.best["epoch"] >= patience


def _floats(sums: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sums.items()}
