"""The run configuration: one dataclass per component, combined into :class:`RunConfig`.

Defaults are layered, lowest first: these dataclass defaults, the model's
recipe (how the book trains it), the data set's recipe (adjustments for a
small data set), a JSON config file, and finally explicit overrides
(dotted keys such as ``optim.lr``; the command line's flags set the same
keys). The whole result is saved as ``config.json`` beside every run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from divekit.choices import INITS, OPTIMIZERS, PRECISIONS, SCHEDULES, TASKS
from divekit.engine.options import OptimConfig, TrainConfig, require
from divekit.errors import ConfigError
from divekit.schema import from_dict, to_dict

MODEL_SOURCES = ("registry", "file", "object")

__all__ = ["DataConfig", "INITS", "ModelConfig", "OPTIMIZERS", "OptimConfig", "PRECISIONS", "RunConfig",
           "SCHEDULES", "TaskConfig", "TrainConfig", "set_dotted"]  # fmt: skip


@dataclass
class ModelConfig:
    """Which network to build.

    Attributes:
        name: a registered model name (``divekit models``), the name of a
            class or function in ``file``, or (``source="object"``) the class
            name of a model given to :func:`divekit.fit` as an object.
        source: ``registry``, ``file`` (``name`` in the Python file ``file``)
            or ``object`` (built by the caller; a run folder of it can be
            reloaded only by giving the model again).
        file: with ``source="file"``: the file's absolute path.
        file_sha256: with ``source="file"``: the SHA-256 of the file the run was trained with.
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
    source: str = "registry"
    file: str | None = None
    file_sha256: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    init: str = "default"
    weights: str | None = None
    head_lr_mult: float = 1.0
    freeze_backbone: bool = False


@dataclass
class DataConfig:
    """Where the data comes from, how it is split and batched.

    Attributes:
        name: a registered data-set name (``divekit data list``), or ``python``
            for batches given to :func:`divekit.fit` as objects.
        data_dir: the folder (or file) holding the data set's files.
        download: fetch missing files (opt-in).
        mirror: a base URL replacing the official download mirrors.
        batch_size: examples per optimisation step, all processes together.
        eval_batch_size: batch size for evaluation (default: ``batch_size``).
        val_split: fraction of the training data held out as a validation
            split, which picks the best checkpoint and drives early stopping
            (0: none, as in the book; then no "best" is claimed).
        split_seed: seeds which training examples go to validation.
    """

    name: str = "digits"
    data_dir: str | None = None
    download: bool = False
    mirror: str | None = None
    batch_size: int = 256
    eval_batch_size: int | None = None
    val_split: float = 0.0
    split_seed: int = 0


@dataclass
class TaskConfig:
    """The task and its options.

    Attributes:
        name: one of :data:`divekit.registry.TASKS` (default: the data set's task).
        options: the task's options, e.g. ``resize`` for images, ``num_steps``
            for language models (``divekit tasks`` lists them).
    """

    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything that defines a training run; saved as ``config.json``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return from_dict(cls, migrate(data))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def validate(self) -> RunConfig:
        """Refuse impossible settings before anything runs; return ``self``."""
        self.optim.validate()
        self.train.validate()
        m, d = self.model, self.data
        require(d.batch_size >= 1, f"data.batch_size must be at least 1, got {d.batch_size}")
        require(d.eval_batch_size is None or d.eval_batch_size >= 1,
                f"data.eval_batch_size must be at least 1, got {d.eval_batch_size}")  # fmt: skip
        require(0.0 <= d.val_split < 1.0, f"data.val_split must be a fraction in [0, 1), got {d.val_split}")
        require(m.init in INITS, f"unknown model.init {m.init!r}; use one of {', '.join(INITS)}")
        require(m.source in MODEL_SOURCES, f"unknown model.source {m.source!r}; use one of {', '.join(MODEL_SOURCES)}")
        require(self.task.name is None or self.task.name in TASKS,
                f"unknown task.name {self.task.name!r}; use one of {', '.join(TASKS)}")  # fmt: skip
        require(m.head_lr_mult > 0 and math.isfinite(m.head_lr_mult), f"model.head_lr_mult must be > 0, got {m.head_lr_mult}")
        finetuning = m.freeze_backbone or m.head_lr_mult != 1
        require(m.weights is not None or not finetuning,
                "model.freeze_backbone and model.head_lr_mult fine-tune pretrained weights: set model.weights "
                "to a run folder or a state_dict file")  # fmt: skip
        return self


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A config dict in today's layout: configs written before the task section had ``name``/``options``
    held the options directly, and the held-out text fraction was ``task.valid_fraction``."""
    task = data.get("task") if isinstance(data, dict) else None
    if not isinstance(task, dict) or set(task) <= {"name", "options"}:
        return data
    data = {**data, "task": {"options": dict(task)}}
    fraction = data["task"]["options"].pop("valid_fraction", None)
    if fraction:
        data["data"] = {**data.get("data", {}), "val_split": fraction}
    return data


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


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": 0.1}`` (``options`` mappings stay whole values)."""
    flat: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "options":
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
