"""The engine's settings: how the loop runs (:class:`TrainConfig`) and how it optimises (:class:`OptimConfig`).

The choices come from :mod:`divekit.choices`, as the command line's do. Messages name config keys
(``optim.lr``); only the command line turns them into flags.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from divekit.choices import DISPLAYS, OPTIMIZERS, PRECISIONS, SCHEDULES
from divekit.errors import ConfigError



@dataclass
class OptimConfig:
    """The optimiser, the learning-rate schedule and gradient clipping.

    Attributes:
        optimizer: one of :data:`OPTIMIZERS`.
        lr: the peak learning rate.
        momentum: SGD momentum.
        weight_decay: L2 penalty (decoupled for AdamW).
        schedule: ``constant``, ``step`` (multiply by ``gamma`` every
            ``step_size`` epochs), ``cosine`` (to zero over the run) or
            ``onecycle`` (up from ``lr / 25`` to ``lr``, then down to almost zero,
            momentum cycled the other way; see :func:`divekit.engine.optim.cycle_height`).
        warmup_epochs: linear warm-up from 0 to ``lr`` over this many epochs
            (with ``onecycle``: the rising part's length, default 30% of the run).
        clip_grad: clip the global gradient norm to this value (``None``: off).
    """

    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    step_size: int = 10
    gamma: float = 0.1
    clip_grad: float | None = None

    def validate(self) -> OptimConfig:
        """Refuse impossible settings, naming the key; return ``self``."""
        require(self.lr > 0 and math.isfinite(self.lr), f"optim.lr must be > 0, got {self.lr}")
        require(self.optimizer in OPTIMIZERS,
                f"unknown optim.optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")  # fmt: skip
        require(self.schedule in SCHEDULES,
                f"unknown optim.schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}")  # fmt: skip
        require(0 <= self.momentum < 1, f"optim.momentum must be in [0, 1), got {self.momentum}")
        require(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        require(self.warmup_epochs >= 0, f"optim.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        require(self.step_size >= 1, f"optim.step_size must be at least 1 epoch, got {self.step_size}")
        require(self.clip_grad is None or self.clip_grad > 0,
                f"optim.clip_grad must be > 0, got {self.clip_grad}")  # fmt: skip
        return self


@dataclass
class TrainConfig:
    """How the training loop runs.

    Attributes:
        epochs: passes over the training data.
        seed: seeds model initialisation, data order, augmentation and dropout.
        deterministic: use only deterministic algorithms (slower on GPU).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: one of :data:`PRECISIONS` (autocast; fp16 on CUDA adds a grad scaler).
        compile: run the model through ``torch.compile``.
        channels_last: keep image tensors in channels-last memory layout
            (``None``: decided per model and device, see :func:`divekit.engine.speed.use_channels_last`).
        threads: CPU threads for PyTorch (``None``: chosen from idle cores;
            a run records the count it used, and a resumed run keeps it).
        patience: stop after this many epochs without improvement of the
            monitored metric (``None``: off; needs a validation split).
        min_delta: the smallest change that counts as an improvement.
        monitor: the metric that picks the best checkpoint and drives early
            stopping, e.g. ``val_acc`` (``None``: the task's own metric on the
            validation split). Test metrics are never allowed.
        checkpoint_every: also checkpoint every N steps (0: only per epoch).
        skip_nonfinite: tolerate this many steps with NaN/Inf loss or
            gradients (each is skipped); one more stops the run.
        sync_every: read the device-side flags and metric sums every N steps
            (and at every epoch end and checkpoint); there is no per-step host sync.
        progress: show a progress bar.
        tensorboard: write TensorBoard event files: ``True`` into the run
            folder's ``tensorboard/``, or a log folder; ``False``/``None``: off
            (needs the ``divekit[tensorboard]`` extra).
        display: ``auto`` (a live figure and a progress widget inside a Jupyter
            kernel, the terminal's bar and lines elsewhere), ``notebook``,
            ``terminal`` or ``off`` (no bar, no live figure; the epoch lines stay).
    """

    epochs: int = 10
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    precision: str = "32"
    compile: bool = False
    channels_last: bool | None = None
    threads: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str | None = None
    checkpoint_every: int = 0
    skip_nonfinite: int = 0
    sync_every: int = 50
    progress: bool = True
    tensorboard: bool | str | None = None
    display: str = "auto"

    def validate(self) -> TrainConfig:
        """Refuse impossible settings, naming the key; return ``self``."""
        require(self.epochs >= 1, f"train.epochs must be at least 1, got {self.epochs}")
        require(self.precision in PRECISIONS,
                f"unknown train.precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")  # fmt: skip
        require(self.threads is None or self.threads >= 1, f"train.threads must be >= 1, got {self.threads}")
        require(self.patience is None or self.patience >= 1,
                f"train.patience must be at least 1 epoch, got {self.patience}")  # fmt: skip
        require(self.checkpoint_every >= 0, f"train.checkpoint_every must be >= 0 steps, got {self.checkpoint_every}")
        require(self.skip_nonfinite >= 0, f"train.skip_nonfinite must be >= 0, got {self.skip_nonfinite}")
        require(not isinstance(self.tensorboard, str) or bool(self.tensorboard.strip()),
                "train.tensorboard is an empty folder name; give a log folder, or true for the run folder's own")
        require(self.display in DISPLAYS,
                f"unknown train.display {self.display!r}; use one of {', '.join(DISPLAYS)}")  # fmt: skip
        require(self.sync_every >= 1, f"train.sync_every must be at least 1 step, got {self.sync_every}")
        require(self.monitor is None or not self.monitor.startswith("test_"),
                f"train.monitor={self.monitor!r} would pick checkpoints on the test split, which then no longer "
                "measures generalisation; monitor a val_ metric (give a validation split) or a train_ one")  # fmt: skip
        return self


def choose_monitor(train: TrainConfig, objective: Any, *, splits: Collection[str]) -> tuple[str | None, str]:
    """The metric that picks the best checkpoint, and whether higher is better.

    ``train.monitor`` if set (a ``val_`` one needs a validation split), else the
    objective's own metric on the validation split, else none: without a
    validation split no "best" is chosen (and early stopping is refused).
    """
    if train.monitor is not None:
        split, _, name = train.monitor.partition("_")
        require(split != "val" or "val" in splits,
                f"train.monitor={train.monitor!r} needs a validation split; set data.val_split or pass val data")  # fmt: skip
        mode = objective.monitor_mode if name == objective.monitor else ("max" if name in ("acc", "bleu") else "min")
        return train.monitor, mode
    monitor = f"val_{objective.monitor}" if "val" in splits else None
    require(train.patience is None or monitor is not None,
            "train.patience (early stopping) needs a validation split to watch: set data.val_split, pass val data, "
            "or set train.monitor to a train_ metric")  # fmt: skip
    return monitor, objective.monitor_mode


def require(ok: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``ok``."""
    if not ok:
        raise ConfigError(message)
