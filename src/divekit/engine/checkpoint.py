"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is a dict of tensors and plain data (loadable with
``weights_only=True``): model, optimiser, scheduler and grad-scaler states,
the position in training (epoch and batch), partial metric sums of an
unfinished epoch, the history so far, and every random-number generator's
state. Restoring all of it makes a resumed run bit-identical, on the CPU, to
one that was never interrupted.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from divekit import io
from divekit.errors import CheckpointError
from divekit.nn.params import unwrap

FORMAT = "divekit-checkpoint"
VERSION = 1


def rng_state() -> dict[str, Any]:
    """The state of the Python, NumPy, torch CPU and CUDA generators, as plain data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "python": [version, list(internal), gauss],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},  # fmt: skip
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically, tagged with the checkpoint format."""
    io.save({"format": FORMAT, "version": VERSION, **state}, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, refusing files that are not divekit checkpoints."""
    state = io.load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a divekit checkpoint (no '{FORMAT}' tag)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer divekit (format {state['version']}); upgrade divekit")
    return state


def load_model_state(model: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str) -> None:
    """``load_state_dict`` that explains a mismatch: missing, unexpected and mis-shaped keys."""
    target = unwrap(model)
    own = target.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state_dict and state_dict[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_some(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_some(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches {_some(shapes)}")
        raise CheckpointError(f"{source} does not fit this model ({'; '.join(parts)}); was it saved from another model?")
    target.load_state_dict(state_dict)


def _some(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def training_state(*, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any, objective: Any, batches: Any,
                   progress: dict[str, Any], history: list[dict[str, Any]], best: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """Everything a run needs to continue exactly where it is, as plain data and tensors."""
    from divekit.data.batching import batches_state

    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler else None,
        "progress": progress,
        "history": history,
        "best": best,
        "task": objective.state_dict(),
        "batches": batches_state(batches),
        "rng": rng_state(),
    }


def restore_training_state(path: Path, *, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
                           objective: Any, batches: Any) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:  # fmt: skip
    """Load what :func:`training_state` saved into the live objects; return ``(progress, history, best)``."""
    from divekit.data.batching import load_batches_state

    state = load_checkpoint(path)
    load_model_state(model, state["model"], source=str(path))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    objective.load_state_dict(state["task"])
    load_batches_state(batches, state.get("batches", {}))
    set_rng_state(state["rng"])
    progress = dict(state["progress"])
    progress.setdefault("train_time", progress.pop("step_time", 0.0))  # checkpoints of before the re-cut
    progress.pop("epoch_time", None)
    return progress, list(state["history"]), state["best"]
