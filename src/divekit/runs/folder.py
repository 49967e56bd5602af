"""A run folder, held by one run at a time.

Taking a folder checks the path first (not empty, not a file, not under a
file), creates it, and takes its lock; every check on what the folder holds
(a run already there, the saved config, the checkpoint to resume from) is
made while holding the lock, so two runs started into one folder at the
same instant cannot both decide it is free. Under ``torchrun`` only the main
process takes the lock; it makes the checks and every process gets the same
verdict.

A run folder holds:

- ``config.json``: the whole :class:`~divekit.runs.config.RunConfig`;
- ``task.json``: what prediction needs (task, class names, input size, vocabulary...);
- ``metrics.csv``, ``metrics.json``, ``curves.png``: per-epoch metrics;
- ``checkpoints/last.pt`` (to resume) and ``checkpoints/best.pt`` (the best
  epoch on the validation split, when there is one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from divekit.engine.distributed import DistContext, barrier
from divekit.engine.lock import RunLock
from divekit.errors import CheckpointError, ConfigError, DivekitError
from divekit.io import atomic_write_json, atomic_write_text, ensure_folder, read_json_object, remove_stale_temporaries
from divekit.runs.config import RunConfig


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a path, refusing an empty name, an existing file and a path under a file."""
    text = os.fspath(out_dir)
    if not text.strip():
        raise ConfigError(f"out_dir {text!r} is empty; name the run folder (an unset shell variable?)")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"out_dir {path} is a file, not a folder; choose another out_dir")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"out_dir {path} is under {parent}, which is a file; choose another out_dir")
    return path


def read_run_config(folder: str | os.PathLike) -> RunConfig:
    """The config saved in a run folder."""
    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a divekit run folder (no config.json); name a folder a run wrote")
    saved = read_json_object(path, what="the run's config", error=CheckpointError)
    try:
        return RunConfig.from_dict(saved)
    except ConfigError as err:
        raise CheckpointError(f"{path} does not hold a valid run config ({err})") from err


class RunFolder:
    """``with RunFolder(path, dist=...) as folder:`` holds ``path`` for this run (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, dist: DistContext | None = None) -> None:
        self.path = check_out_dir(path)
        self.dist = dist or DistContext()
        self.lock = RunLock(self.path) if self.dist.is_main else None

    def __enter__(self) -> RunFolder:
        error = None
        if self.lock is not None:
            try:
                ensure_folder(self.path)
                self.lock.acquire()
                remove_stale_temporaries(self.path)  # writes a killed run left half-done; we hold the lock
            except DivekitError as err:
                error = err
        self._agree(error)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.release()

    def _agree(self, error: DivekitError | None) -> None:
        """Every process raises the main process's error, or none does."""
        if self.dist.enabled:
            import torch.distributed

            message = [None if error is None else (type(error), str(error))]
            torch.distributed.broadcast_object_list(message, src=0)
            if message[0] is not None and error is None:
                cls, text = message[0]
                error = cls(text)
        barrier(self.dist)
        if error is not None:
            raise error

    def check(self, *, resume: bool) -> None:
        """Refuse what cannot go on: a new run into a folder that holds one, a resume with nothing to resume."""
        error = None
        if self.lock is not None:
            try:
                self._check(resume)
            except DivekitError as err:
                error = err
        self._agree(error)

    def _check(self, resume: bool) -> None:
        holds_run = (self.path / "config.json").exists()
        if not resume and holds_run:
            raise ConfigError(f"{self.path} already holds a run; continue it with resume=True or choose another out_dir")
        if resume and not holds_run:
            raise ConfigError(f"{self.path} holds no run to resume (no config.json); start one there without resume=True")
        if resume and not self.last_checkpoint.is_file():
            raise ConfigError(f"{self.path} has no checkpoints/last.pt to resume from (the run stopped before its "
                              f"first checkpoint); start afresh: delete {self.path} or choose another out_dir")  # fmt: skip

    @property
    def last_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    def write(self, config: RunConfig, info: dict[str, Any], extras: dict[str, str]) -> None:
        """Write ``config.json``, ``task.json`` and extra files (the main process only)."""
        if self.lock is None:
            return
        atomic_write_json(self.path / "config.json", config.to_dict())
        atomic_write_json(self.path / "task.json", info)
        for name, text in extras.items():
            atomic_write_text(self.path / name, text)

