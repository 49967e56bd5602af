"""Runs: train a model by name into a run folder, resume it, load it, evaluate it.

A run folder holds:

- ``config.json``: the whole :class:`RunConfig`;
- ``task.json``: what prediction needs (class names, input size, vocabulary...);
- ``metrics.csv``, ``metrics.json``, ``curves.png``: per-epoch metrics;
- ``checkpoints/last.pt`` (to resume) and ``checkpoints/best.pt`` (to use).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import divekit.data  # noqa: F401  (registers the data sets)
import divekit.models  # noqa: F401  (registers the models)
import divekit.tasks  # noqa: F401  (registers the tasks)
from divekit.schema import from_dict
from divekit.data.registry import get_dataset_entry, load_dataset
from divekit.device import configure_threads, resolve_device
from divekit.errors import CheckpointError, ConfigError
from divekit.io import atomic_write_json, atomic_write_text
from divekit.models.registry import create_model, get_model_entry, supported_options
from divekit.nn.init import apply_init
from divekit.engine import checkpoint as ckpt
from divekit.runs import finetune
from divekit.runs.config import RunConfig, set_dotted
from divekit.engine.distributed import DistContext, barrier, env_context, init_distributed
from divekit.engine.lock import RunLock
from divekit.engine.seeding import seed_everything, set_deterministic
from divekit.tasks.base import Task, get_task_entry
from divekit.engine.trainer import FitResult, Trainer

# Options that may change when a run is resumed; everything else must match.
RESUMABLE_CHANGES = {
    "train.epochs", "train.device", "train.progress", "train.threads", "train.checkpoint_every",
    "train.patience", "train.skip_nonfinite", "data.data_dir", "data.download", "data.mirror",
}  # fmt: skip


@dataclass
class RunResult:
    """The outcome of :func:`train`."""

    out_dir: Path | None
    config: RunConfig
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    stop_reason: str

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def resolve_config(
    model: str,
    *,
    data: str | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | Path | None = None,
) -> RunConfig:
    """Build a run config: defaults < model recipe < data recipe < file < ``overrides``.

    ``overrides`` maps dotted keys (``"optim.lr"``) to values.
    """
    entry = get_model_entry(model)
    layered: dict[str, Any] = RunConfig().to_dict()
    layered["model"]["name"] = model
    for key, value in entry.recipe.items():
        set_dotted(layered, key, value)
    overrides = dict(overrides or {})
    file_cfg = _read_config_file(config_file) if config_file else {}
    data_name = data or overrides.get("data.name") or file_cfg.get("data", {}).get("name") or layered["data"]["name"]
    for key, value in get_dataset_entry(data_name).recipe.items():
        set_dotted(layered, key, value)
    _merge(layered, file_cfg)
    layered["data"]["name"] = data_name
    for key, value in overrides.items():
        set_dotted(layered, key, value)
    return RunConfig.from_dict(layered).validate()


def _read_config_file(path: str | Path) -> dict[str, Any]:
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} does not exist") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid JSON ({err})") from err
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of sections")
    return loaded


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "options":
            _merge(base[key], value)
        else:
            base[key] = value


def build_task(config: RunConfig, data: Any | None = None) -> Task:
    """The task for the run's data set, checked against the model's family."""
    data = data if data is not None else load_dataset(
        config.data.name, data_dir=config.data.data_dir, download=config.data.download, mirror=config.data.mirror)
    entry = get_task_entry(data.kind)
    model_entry = get_model_entry(config.model.name)
    task_config = from_dict(entry.config_cls, config.task, where="task")
    task = entry.build(data, task_config, batch_size=config.data.batch_size,
                       eval_batch_size=config.data.eval_batch_size or config.data.batch_size,
                       model_entry=model_entry)  # fmt: skip
    if model_entry.family not in task.families:
        raise ConfigError(
            f"model {model_entry.name!r} is a {model_entry.family} but data set {config.data.name!r} "
            f"is for {' or '.join(task.families)} models"
        )
    return task


def build_model(config: RunConfig, task_options: dict[str, Any], *, pretrained: bool = True) -> nn.Module:
    """Create the configured model for the data's facts, then initialise it.

    With ``model.weights`` the pretrained weights are loaded and the output
    layer re-initialised for fine-tuning; ``pretrained=False`` builds the same
    architecture without reading them (a checkpoint will fill it).
    """
    options = {**supported_options(config.model.name, task_options), **config.model.options}
    model = apply_init(create_model(config.model.name, **options), config.model.init)
    mc = config.model
    if mc.weights is not None:
        num_classes = options.get("num_classes", task_options.get("num_classes"))
        finetune.prepare_finetuning(model, weights=mc.weights, expected_name=mc.name, num_classes=num_classes,
                                    freeze=mc.freeze_backbone, load=pretrained)  # fmt: skip
    return model


def optimizer_groups(config: RunConfig, model: nn.Module) -> list[dict[str, Any]] | None:
    """Fine-tuning's parameter groups (head at ``lr * head_lr_mult``), or ``None`` for one group."""
    if config.model.weights is None:
        return None
    return finetune.param_groups(model, lr=config.optim.lr, head_lr_mult=config.model.head_lr_mult)


def default_out_dir(config: RunConfig) -> Path:
    return Path("runs") / f"{config.model.name}-{config.data.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: RunConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    write: bool = True,
    log: Any = None,
) -> RunResult:
    """Train ``config`` into a run folder (``out_dir``, default ``runs/<model>-<data>-<time>``).

    With ``resume=True``, ``out_dir`` must hold a run: it continues from its
    last checkpoint with its own saved config (``config`` supplies only the
    options in :data:`RESUMABLE_CHANGES`). ``write=False`` keeps everything
    in memory. Under ``torchrun`` this runs data-parallel across processes.
    """
    config.validate()
    dist = env_context()
    configure_threads(config.train.threads, local_world_size=dist.local_world_size)
    set_deterministic(config.train.deterministic)
    dist = init_distributed(resolve_device(config.train.device).type)
    folder = _agree_on_folder(out_dir, config, dist) if write else None
    if resume and folder is None:
        raise ConfigError("--resume needs the run folder to continue: pass --out DIR")
    if folder is not None and resume:
        config = merge_resume_config(folder, _differences(read_run_config(folder), config))
    elif folder is not None and (folder / "config.json").exists():
        raise ConfigError(f"{folder} already holds a run; continue it with --resume or choose another --out")
    barrier(dist)  # every process has checked the folder before the main one writes into it
    # Data and model come first: a bad name or a missing file is reported before any folder is made.
    seed_everything(config.train.seed)
    task = build_task(config)
    last = folder / "checkpoints" / "last.pt" if folder is not None else None
    resume_from = last if resume and last.exists() else None
    model = build_model(config, task.model_options(), pretrained=resume_from is None)
    lock = RunLock(folder) if folder is not None and dist.is_main else None
    if lock:
        lock.acquire()
    try:
        if folder is not None and dist.is_main:
            _write_run_files(folder, config, task)
        trainer = Trainer(model, task, config, out_dir=folder, dist=dist, log=log,
                          param_groups=optimizer_groups(config, model))  # fmt: skip
        fit: FitResult = trainer.fit(resume_from=resume_from)
    finally:
        if lock:
            lock.release()
    return RunResult(folder, config, fit.history, fit.best, fit.stop_reason)


def _agree_on_folder(out_dir: str | Path | None, config: RunConfig, dist: DistContext) -> Path:
    folder = [str(out_dir) if out_dir is not None else str(default_out_dir(config))]
    if dist.enabled:
        import torch.distributed

        torch.distributed.broadcast_object_list(folder, src=0)
    return Path(folder[0])


def _write_run_files(folder: Path, config: RunConfig, task: Task) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "config.json", config.to_dict())
    atomic_write_json(folder / "task.json", task.info())
    for name, text in task.prediction_extras().items():
        atomic_write_text(folder / name, text)


def read_run_config(folder: str | Path) -> RunConfig:
    """The config saved in a run folder."""
    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a divekit run folder (no config.json); pass the folder `divekit train` wrote")
    try:
        return RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt ({err}); the run cannot be reloaded") from err


def merge_resume_config(folder: Path, changes: dict[str, Any]) -> RunConfig:
    """The config saved in ``folder`` with ``changes`` (dotted keys) applied.

    Only the options in :data:`RESUMABLE_CHANGES` may change; anything else
    would make the resumed run a different run.
    """
    saved = read_run_config(folder)
    saved_flat = _flatten(saved.to_dict())
    merged = saved.to_dict()
    for key, value in changes.items():
        if saved_flat.get(key, object()) == value:
            continue
        if key not in RESUMABLE_CHANGES:
            raise ConfigError(
                f"cannot resume {folder} with {key}={value!r}: the run was started with {saved_flat.get(key)!r}; "
                f"drop the option, or start a new run with another --out"
            )
        set_dotted(merged, key, value)
    return RunConfig.from_dict(merged).validate()


def resume(folder: str | Path, *, changes: dict[str, Any] | None = None, log: Any = None) -> RunResult:
    """Continue the run in ``folder`` from its last checkpoint.

    ``changes`` (dotted keys) may raise ``train.epochs``, move to another
    device, and the like; see :data:`RESUMABLE_CHANGES`.
    """
    config = merge_resume_config(Path(folder), changes or {})
    return train(config, out_dir=folder, resume=True, log=log)


def _differences(saved: RunConfig, requested: RunConfig) -> dict[str, Any]:
    saved_flat = _flatten(saved.to_dict())
    return {k: v for k, v in _flatten(requested.to_dict()).items() if saved_flat.get(k, object()) != v}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "options":
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


@dataclass
class LoadedRun:
    """A trained model restored from its run folder."""

    folder: Path
    config: RunConfig
    info: dict[str, Any]
    model: nn.Module
    checkpoint: str


def load_run(folder: str | Path, *, which: str = "best", device: str = "cpu") -> LoadedRun:
    """Rebuild the model of a run folder and load its ``best`` or ``last`` weights."""
    folder = Path(folder)
    config = read_run_config(folder)
    try:
        info = json.loads((folder / "task.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{folder}/task.json is missing or corrupt ({err})") from err
    path = folder / "checkpoints" / f"{which}.pt"
    if which == "best" and not path.exists():
        path = folder / "checkpoints" / "last.pt"
    if not path.exists():
        raise CheckpointError(f"{folder} has no checkpoint yet (checkpoints/{which}.pt); train it first")
    state = ckpt.load_checkpoint(path)
    model = build_model(config, info.get("model_options", {}), pretrained=False)
    ckpt.load_model_state(model, state["model"], source=str(path))
    model.to(resolve_device(device)).eval()
    return LoadedRun(folder, config, info, model, str(path))


def evaluate_run(
    folder: str | Path, *, which: str = "best", device: str = "cpu", data_dir: str | None = None
) -> dict[str, float]:
    """Score a run's model on its data set's test split (reloading the data)."""
    from divekit.tasks.base import Runtime

    run = load_run(folder, which=which, device=device)
    config = run.config
    if data_dir is not None:
        config.data.data_dir = data_dir
    task = build_task(config)
    task.setup(Runtime(device=next(run.model.parameters()).device))
    with torch.no_grad():
        return task.metrics(task.eval_sums(run.model), "test")
