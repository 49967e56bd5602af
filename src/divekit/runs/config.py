"""The run configuration: one dataclass per component, combined into :class:`RunConfig`.

Defaults are layered, lowest first: these dataclass defaults, the model's
recipe (how the book trains it), the data set's recipe (adjustments for a
small data set), a JSON config file, and finally command-line options. The
whole result is saved as ``config.json`` beside every run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from divekit.schema import from_dict, to_dict
from divekit.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")
PRECISIONS = ("32", "bf16", "16")


@dataclass
class ModelConfig:
    """Which network to build.

    Attributes:
        name: a registered model name (``divekit models``).
        options: keyword options for the model's builder.
        init: ``default`` (PyTorch's), ``xavier``, ``normal`` or ``constant``.
        weights: fine-tune from these weights: a divekit run folder or a
            ``state_dict`` file; the output layer is replaced for the data's
            classes and Xavier-initialised (notes §5).
        head_lr_mult: with ``weights``: the output layer's learning rate is
            ``optim.lr`` times this (10 in the notes' method).
        freeze_backbone: with ``weights``: train only the output layer.
    """

    name: str = "lenet"
    options: dict[str, Any] = field(default_factory=dict)
    init: str = "default"
    weights: str | None = None
    head_lr_mult: float = 1.0
    freeze_backbone: bool = False


@dataclass
class DataConfig:
    """Where the data comes from and how it is batched.

    Attributes:
        name: a registered data-set name (``divekit data list``).
        data_dir: the folder holding the data set's files.
        download: fetch missing files (opt-in).
        mirror: a base URL replacing the official download mirrors.
        batch_size: examples per optimisation step, all processes together.
        eval_batch_size: batch size for evaluation (default: ``batch_size``).
    """

    name: str = "digits"
    data_dir: str | None = None
    download: bool = False
    mirror: str | None = None
    batch_size: int = 256
    eval_batch_size: int | None = None


@dataclass
class OptimConfig:
    """The optimiser, the learning-rate schedule and gradient clipping.

    Attributes:
        optimizer: ``sgd``, ``adam`` or ``adamw``.
        lr: the peak learning rate.
        momentum: SGD momentum.
        weight_decay: L2 penalty (decoupled for AdamW).
        schedule: ``constant``, ``step`` (multiply by ``gamma`` every
            ``step_size`` epochs) or ``cosine`` (to zero over the run).
        warmup_epochs: linear warm-up from 0 to ``lr`` over this many epochs.
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


@dataclass
class TrainConfig:
    """How the training loop runs.

    Attributes:
        epochs: passes over the training data.
        seed: seeds model initialisation, data order and dropout.
        deterministic: use only deterministic algorithms (slower on GPU).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``32``, ``bf16`` or ``16`` (autocast; fp16 uses a grad scaler).
        compile: run the model through ``torch.compile``.
        channels_last: keep image tensors in channels-last memory layout
            (``None``: on for convolutional models on the CPU, where it measured faster,
            except those that batch-normalise fewer than 32 channels, where it measured slower).
        threads: CPU threads for PyTorch (default: chosen from idle cores).
        patience: stop after this many epochs without improvement (``None``: off).
        min_delta: the smallest change that counts as an improvement.
        checkpoint_every: also checkpoint every N steps (0: only per epoch).
        skip_nonfinite: tolerate this many steps with NaN/Inf loss or gradients.
        progress: show a progress bar.
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
    checkpoint_every: int = 0
    skip_nonfinite: int = 0
    progress: bool = True


@dataclass
class RunConfig:
    """Everything that defines a training run; saved as ``config.json``.

    ``task`` holds the options of the data set's task kind (e.g. ``resize``
    for images, ``num_steps`` for language models); the task validates them.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    task: dict[str, Any] = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def validate(self) -> RunConfig:
        """Refuse impossible settings before anything runs; return ``self``."""
        _require(self.optim.lr > 0 and math.isfinite(self.optim.lr), f"learning rate must be > 0, got {self.optim.lr}")
        _require(self.data.batch_size >= 1, f"batch size must be at least 1, got {self.data.batch_size}")
        _require(self.data.eval_batch_size is None or self.data.eval_batch_size >= 1,
                 f"eval batch size must be at least 1, got {self.data.eval_batch_size}")  # fmt: skip
        _require(self.train.epochs >= 1, f"epochs must be at least 1, got {self.train.epochs}")
        _require(self.optim.optimizer in OPTIMIZERS,
                 f"unknown optimizer {self.optim.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")  # fmt: skip
        _require(self.optim.schedule in SCHEDULES,
                 f"unknown schedule {self.optim.schedule!r}; use one of {', '.join(SCHEDULES)}")  # fmt: skip
        _require(0 <= self.optim.momentum < 1, f"momentum must be in [0, 1), got {self.optim.momentum}")
        _require(self.optim.weight_decay >= 0, f"weight decay must be >= 0, got {self.optim.weight_decay}")
        _require(self.optim.warmup_epochs >= 0, f"warm-up must be >= 0 epochs, got {self.optim.warmup_epochs}")
        _require(self.optim.step_size >= 1, f"step size must be at least 1 epoch, got {self.optim.step_size}")
        _require(self.optim.clip_grad is None or self.optim.clip_grad > 0,
                 f"gradient clipping threshold must be > 0, got {self.optim.clip_grad}")  # fmt: skip
        _require(self.train.precision in PRECISIONS,
                 f"unknown precision {self.train.precision!r}; use one of {', '.join(PRECISIONS)}")  # fmt: skip
        _require(self.train.threads is None or self.train.threads >= 1, f"threads must be >= 1, got {self.train.threads}")
        _require(self.train.patience is None or self.train.patience >= 1,
                 f"patience must be at least 1 epoch, got {self.train.patience}")  # fmt: skip
        _require(self.model.head_lr_mult > 0 and math.isfinite(self.model.head_lr_mult),
                 f"head_lr_mult must be > 0, got {self.model.head_lr_mult}")  # fmt: skip
        finetuning = self.model.freeze_backbone or self.model.head_lr_mult != 1
        _require(self.model.weights is not None or not finetuning,
                 "--freeze-backbone and --head-lr-mult fine-tune pretrained weights: add --weights RUN_DIR_OR_FILE")
        _require(self.train.checkpoint_every >= 0, "checkpoint_every must be >= 0 steps")
        _require(self.train.skip_nonfinite >= 0, "skip_nonfinite must be >= 0")
        return self


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set ``config["optim"]["lr"]`` from ``key="optim.lr"``, refusing unknown sections."""
    section, _, name = key.partition(".")
    sections = [f.name for f in dataclasses.fields(RunConfig)]
    if section not in sections or not name:
        raise ConfigError(f"bad option {key!r}: expected SECTION.NAME with SECTION one of {', '.join(sections)}")
    target = config.setdefault(section, {})
    parts = name.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
