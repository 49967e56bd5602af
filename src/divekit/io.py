"""Reading and writing files (notes §1.3 读写文件), safely.

- Every write is atomic: the bytes go to a temporary file in the same folder,
  are flushed to disk, and only then renamed over the target. A crash or a
  full disk mid-write leaves the previous file untouched.
- Loading never unpickles arbitrary objects: ``torch.load`` runs with
  ``weights_only=True``, which accepts tensors, numbers, strings and the
  containers of those, and refuses anything that would run code.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch

from divekit.errors import CheckpointError, DivekitError


class DiskWriteError(DivekitError):
    """A write failed (disk full, permission...); the previous file is intact."""

    exit_code = 1


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` only if the block succeeds.

    The temporary file sits in ``path``'s folder (so the rename is atomic on
    the same file system), is fsynced before the rename, and is removed if
    anything fails. Errors from the operating system become a
    :class:`DiskWriteError` that says the previous file is unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            reason = "no space left on device" if err.errno == errno.ENOSPC else (err.strerror or str(err))
            raise DiskWriteError(
                f"could not write {path}: {reason}; the previous version of the file, if any, is intact"
            ) from err
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save(obj: Any, path: str | os.PathLike, *, writer: Callable[[Any, IO], None] | None = None) -> None:
    """Save a tensor, a list or dict of tensors, or a ``state_dict`` atomically.

    ``writer`` defaults to ``torch.save``; it exists so tests can simulate a
    crash halfway through a write.
    """
    writer = writer or torch.save
    with atomic_open(path, "wb") as handle:
        writer(obj, handle)


def load(path: str | os.PathLike, *, map_location: str | torch.device | None = "cpu") -> Any:
    """Load what :func:`save` wrote, refusing anything that is not plain data.

    Raises:
        CheckpointError: the file is missing, truncated, not a PyTorch file,
            or carries pickled objects that would run code when loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); it is not a saved tensor or checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"refused to load {path}: it contains pickled objects other than tensors and plain data "
            f"({first}); only load files from sources you trust, and re-save them as plain state_dicts"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(
            f"cannot read {path}: the file is truncated or not a PyTorch file ({type(err).__name__})"
        ) from err
