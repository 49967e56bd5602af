"""Train a configured run into a run folder, and resume it.

Everything that can be refused is checked before any folder is made: the
names, the data, the model's options, and one forward pass of the model on
one batch. A new run then takes its folder (see :mod:`divekit.runs.folder`);
a resumed run takes the folder first and reads its saved config under the
lock. The settings that change the numbers on the CPU (thread count,
deterministic mode, precision, compile, channels-last) are recorded in
``config.json``, printed in the run's first line, and kept when it resumes,
so a resumed run is bit-identical to one that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from divekit.data.batching import take_rows
from divekit.data.sources.base import DataSource
from divekit.device import configure_threads, resolve_device
from divekit.engine.callbacks import Callback
from divekit.engine.distributed import DistContext, init_distributed
from divekit.engine.result import RunResult
from divekit.engine.seeding import seed_everything, set_deterministic
from divekit.engine.speed import use_channels_last
from divekit.engine.trainer import Trainer
from divekit.errors import ConfigError
from divekit.runs.build import (build_model, build_objective, build_source, check_model_fits, model_builder,
                                optimizer_groups)  # fmt: skip
from divekit.runs.config import RunConfig, flatten, set_dotted
from divekit.runs.folder import RunFolder, read_run_config
from divekit.tasks.base import Objective

# Options that may change when a run is resumed; everything else must match.
RESUMABLE_CHANGES = {
    "train.epochs", "train.device", "train.progress", "train.threads", "train.checkpoint_every", "train.sync_every",
    "train.patience", "train.skip_nonfinite", "train.tensorboard", "train.display", "data.data_dir", "data.download",
    "data.mirror", "data.eval_batch_size",
}  # fmt: skip
# Changes that keep a resumed run going but make it differ from an uninterrupted one.
NOT_BIT_IDENTICAL = ("train.threads", "train.device")


@dataclass
class Prepared:
    """Everything a run trains with, built and checked before any folder is made."""

    config: RunConfig
    source: DataSource
    model: nn.Module
    objective: Objective
    dist: DistContext


def default_out_dir(config: RunConfig) -> Path:
    return Path("runs") / f"{config.model.name}-{config.data.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: RunConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    write: bool = True,
    log: Callable[[str], None] | None = None,
    callbacks: Sequence[Callback] = (),
    model_file: str | None = None,
) -> RunResult:
    """Train ``config`` into a run folder (``out_dir``, default ``runs/<model>-<data>-<time>``).

    With ``resume=True``, ``out_dir`` must hold a run: it continues from its
    last checkpoint with its own saved config (``config`` supplies only the
    options in :data:`RESUMABLE_CHANGES`). ``write=False`` keeps everything
    in memory. Under ``torchrun`` this runs data-parallel across processes.

    Args:
        callbacks: extra :class:`~divekit.engine.callbacks.Callback` objects.
        model_file: for a model trained from a file that moved: the file to import it from.
    """
    return run(config, out_dir=out_dir, resume=resume, write=write, log=log, callbacks=callbacks,
               model_file=model_file)  # fmt: skip


def run(config: RunConfig, *, out_dir: str | Path | None, resume: bool, write: bool,
        log: Callable[[str], None] | None, callbacks: Sequence[Callback], model_file: str | None = None,
        model: nn.Module | None = None, source: DataSource | None = None,
        objective: Objective | None = None) -> RunResult:  # fmt: skip
    """:func:`train`, for a model, data source or objective given as objects (what :func:`divekit.fit` passes)."""
    config.validate()
    dist = init_distributed(resolve_device(config.train.device).type)
    parts = {"model_file": model_file, "model": model, "source": source, "objective": objective}
    if resume and (out_dir is None or not write):
        raise ConfigError("resume=True needs the run folder to continue: pass out_dir")
    if resume:
        with RunFolder(out_dir, dist=dist) as folder:  # type: ignore[arg-type]
            folder.check(resume=True)
            merged = merge_resume_config(read_run_config(folder.path), config, log=log)
            prepared = prepare(merged, dist=dist, pretrained=False, **parts)
            return run_prepared(prepared, folder, resume_from=folder.last_checkpoint, log=log, callbacks=callbacks)
    prepared = prepare(config, dist=dist, **parts)
    if not write:
        return run_prepared(prepared, None, log=log, callbacks=callbacks)
    path = agree_on_folder(out_dir if out_dir is not None else default_out_dir(config), dist)
    with RunFolder(path, dist=dist) as folder:
        folder.check(resume=False)
        return run_prepared(prepared, folder, log=log, callbacks=callbacks)


def resume(folder: str | Path, *, changes: dict[str, Any] | None = None, log: Callable[[str], None] | None = None,
           callbacks: Sequence[Callback] = (), model_file: str | None = None) -> RunResult:  # fmt: skip
    """Continue the run in ``folder`` from its last checkpoint.

    ``changes`` (dotted keys) may raise ``train.epochs``, move to another
    device, and the like; see :data:`RESUMABLE_CHANGES`.
    """
    saved = read_run_config(folder)
    requested = saved.to_dict()
    for key, value in (changes or {}).items():
        set_dotted(requested, key, value)
    return train(RunConfig.from_dict(requested), out_dir=folder, resume=True, log=log, callbacks=callbacks,
                 model_file=model_file)  # fmt: skip


def prepare(config: RunConfig, *, dist: DistContext, pretrained: bool = True, model_file: str | None = None,
            model: nn.Module | None = None, source: DataSource | None = None,
            objective: Objective | None = None) -> Prepared:  # fmt: skip
    """Set threads and seeds, build the data source, the model and the objective, and check they fit."""
    threads = configure_threads(config.train.threads, local_world_size=dist.local_world_size)
    set_deterministic(config.train.deterministic)
    seed_everything(config.train.seed)
    source = source or build_source(config)
    if model is None:
        builder = model_builder(config, model_file=model_file)
        model = build_model(config, source.model_options(), pretrained=pretrained, builder=builder)
    objective = objective or build_objective(source, config)
    check_fits(model, objective, source, seed=config.train.seed)
    device = resolve_device(config.train.device, local_rank=dist.local_rank)
    channels_last = use_channels_last(config.train.channels_last, model, device)
    # what divekit chose is recorded, so a resumed run makes the same choice whatever the machine is doing then
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, threads=threads,
                                                                   channels_last=channels_last))  # fmt: skip
    return Prepared(config, source, model, objective, dist)


def check_fits(model: nn.Module, objective: Objective, source: DataSource, *, seed: int) -> None:
    """The model's output on the first two training examples fits the task (see :func:`check_model_fits`)."""
    first = next(iter(source.train_batches(seed=seed).iter_from(0)))
    batch = source.transfer(take_rows(first, slice(0, 2)), device=_param_device(model), channels_last=False, train=False)
    check_model_fits(model, objective, batch)


def _param_device(model: nn.Module) -> Any:
    return next((p.device for p in model.parameters()), resolve_device("cpu"))


def run_prepared(prepared: Prepared, folder: RunFolder | None, *, resume_from: Path | None = None,
                 log: Callable[[str], None] | None = None, callbacks: Sequence[Callback] = ()) -> RunResult:  # fmt: skip
    """Write the run's files and train."""
    config, source = prepared.config, prepared.source
    if folder is not None:
        folder.write(config, {"task": source.task, **source.info()}, source.extras())
    trainer = Trainer(prepared.model, prepared.objective, source.train_batches(seed=config.train.seed),
                      eval_data=source.eval_batches(), train=config.train, optim=config.optim,
                      transfer=source.transfer, out_dir=folder.path if folder else None, dist=prepared.dist,
                      param_groups=optimizer_groups(config, prepared.model), callbacks=callbacks, log=log,
                      name=f"{config.model.name} on {'your batches' if config.data.name == 'python' else config.data.name}")  # fmt: skip
    result = trainer.fit(resume_from=resume_from)
    return dataclasses.replace(result, config=config)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def agree_on_folder(out_dir: str | Path, dist: DistContext) -> str | Path:
    """The main process's choice of folder, for every process (a default name holds the time)."""
    if not dist.enabled:
        return out_dir
    import torch.distributed

    folder = [str(out_dir)]
    torch.distributed.broadcast_object_list(folder, src=0)
    return folder[0]


def merge_resume_config(saved: RunConfig, requested: RunConfig, *, log: Callable[[str], None] | None = None) -> RunConfig:
    """The saved config with ``requested``'s differences applied, if they may change on resume.

    A thread count or channels-last choice left to divekit (``None``) keeps the
    recorded one; an explicit change of what makes the numbers prints that
    the resumed run will not be bit-identical.
    """
    saved_flat = flatten(saved.to_dict())
    merged = saved.to_dict()
    for key, value in flatten(requested.to_dict()).items():
        if saved_flat.get(key, object()) == value or (value is None and key in ("train.threads", "train.channels_last")):
            continue
        if key not in RESUMABLE_CHANGES:
            raise ConfigError(f"cannot resume with {key}={value!r}: the run was started with {saved_flat.get(key)!r}; "
                              "drop the option, or start a new run in another out_dir")  # fmt: skip
        if key in NOT_BIT_IDENTICAL:
            (log or _stderr)(f"note: {key} changed from {saved_flat.get(key)!r} to {value!r} on resume: the resumed run will not be "
                "bit-identical to an uninterrupted one")  # fmt: skip
        set_dotted(merged, key, value)
    return RunConfig.from_dict(merged).validate()
