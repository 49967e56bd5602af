"""CIFAR-10 from its official python-pickle batches (notes §4: the colour data set for augmentation).

Krizhevsky, 2009, "Learning Multiple Layers of Features from Tiny Images":
60,000 32x32 colour images in 10 classes, 50,000 for training (five batch
files) and 10,000 for testing. The official "python version" archive,
``cifar-10-python.tar.gz``, holds a folder ``cifar-10-batches-py`` of files
pickled by Python 2: each a dict with ``data`` (a uint8 array of N rows of
3,072 bytes: 1,024 red, then green, then blue, row-major) and ``labels``.

Pickle can run arbitrary code, so the batches are read with a *restricted*
unpickler that resolves only what such a file needs (numpy's array and dtype
reconstruction and ``_codecs.encode``); anything else is refused before it is
created. The loaded structure is then checked field by field.

The files are read from a folder given by the user (the archive itself, the
extracted ``cifar-10-batches-py`` folder, or its contents), or the archive is
downloaded on request and checked against its SHA-256 before it is used.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from divekit.data.download import RemoteFile, dataset_folder, download
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.data.registry import register_dataset
from divekit.errors import DataError

NAME = "cifar-10"
ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    size=170_498_071,
)
BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_BYTES = 3 * 32 * 32
MAX_BATCH_BYTES = 64 << 20  # an official batch is 31 MB; refuse anything far larger before reading it


def _numpy_global(module: str, name: str) -> Any:
    """numpy's reconstruction functions, whichever numpy (1.x ``core`` or 2.x ``_core``) is installed."""
    for candidate in (module.replace("numpy.core", "numpy._core"), module.replace("numpy._core", "numpy.core")):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"cannot resolve {module}.{name}")


# (module, name) -> how to resolve it: the only globals a CIFAR batch pickle may name.
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: __import__("_codecs").encode,
    **{(module, name): (lambda m=module, n=name: _numpy_global(m, n))
       for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct",)},
    **{(module, "_frombuffer"): (lambda m=module: _numpy_global(m, "_frombuffer"))
       for module in ("numpy.core.numeric", "numpy._core.numeric")},
}  # fmt: skip


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a global that a CIFAR-10 batch never needs."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        resolve = ALLOWED_GLOBALS.get((module, name))
        if resolve is None:
            raise ForbiddenGlobal(f"refusing to load the global {module}.{name}")
        return resolve()


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` (Python 2 strings decoded as Latin-1) with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def parse_batch(data: bytes, *, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file's bytes -> images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64.

    Raises:
        DataError: the file is not a safe, well-formed CIFAR-10 batch.
    """
    try:
        batch = restricted_loads(data)
    except ForbiddenGlobal as err:
        raise DataError(f"{source}: refused: {err}; a CIFAR-10 batch only holds arrays, lists and strings. "
                        "Only use the official files") from err  # fmt: skip
    except Exception as err:  # noqa: BLE001  (any other failure means a corrupt file)
        raise DataError(f"{source}: not a CIFAR-10 python batch ({type(err).__name__}: {err})") from err
    if not isinstance(batch, dict):
        raise DataError(f"{source}: expected a dict with 'data' and 'labels', found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    images, labels = batch.get("data"), batch.get("labels")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != IMAGE_BYTES:
        shape = getattr(images, "shape", None)
        raise DataError(f"{source}: 'data' must be a uint8 array of rows of {IMAGE_BYTES} bytes, found {shape}")
    valid = (isinstance(labels, list) and len(labels) == images.shape[0]
             and all(type(v) is int and 0 <= v < len(CLASSES) for v in labels))  # fmt: skip
    if not valid:
        raise DataError(f"{source}: 'labels' must be a list of {images.shape[0]} class indices in 0..9")
    labels = np.asarray(labels, dtype=np.int64)
    return images.reshape(-1, 3, 32, 32), labels  # rows: 1,024 red, then green, then blue bytes


def _read_from_folder(folder: Path) -> Callable[[str], tuple[bytes, str]] | None:
    """A reader of batch files from extracted files or the archive, if ``folder`` has either."""
    for base in (folder / BATCH_FOLDER, folder):
        if all((base / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH)):
            return lambda name, base=base: (_read_file(base / name), str(base / name))
    if (folder / ARCHIVE.name).is_file():
        return _archive_reader(folder / ARCHIVE.name)
    return None


def _read_file(path: Path) -> bytes:
    if path.stat().st_size > MAX_BATCH_BYTES:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes is far larger than a CIFAR-10 batch")
    return path.read_bytes()


def _archive_reader(path: Path) -> Callable[[str], tuple[bytes, str]]:
    """Read batch files straight out of the archive (nothing is extracted to disk)."""
    try:
        archive = tarfile.open(path, "r:gz")
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"{path}: corrupt or truncated archive ({err}); delete it and download it again") from err

    def read(name: str) -> tuple[bytes, str]:
        member = members.get(f"{BATCH_FOLDER}/{name}")
        source = f"{path}:{BATCH_FOLDER}/{name}"
        if member is None:
            raise DataError(f"{path} has no {BATCH_FOLDER}/{name}; is it the official python-version archive?")
        if member.size > MAX_BATCH_BYTES:
            raise DataError(f"{source}: {member.size:,} bytes is far larger than a CIFAR-10 batch")
        return archive.extractfile(member).read(), source

    return read


def load_cifar10(*, data_dir: str | os.PathLike | None = None, download_missing: bool = False,
                 mirror: str | None = None) -> ImageClassificationData:  # fmt: skip
    """Load CIFAR-10 from ``data_dir`` (or the cache), downloading the archive only if asked.

    Args:
        data_dir: a folder holding ``cifar-10-python.tar.gz``, or the
            extracted ``cifar-10-batches-py`` folder, or its files.
        download_missing: fetch the official archive (SHA-256 checked) when nothing is found.
        mirror: a base URL that replaces the official one (may be local HTTP).
    """
    folder = dataset_folder(NAME, data_dir, (ARCHIVE.name, f"{BATCH_FOLDER}/{TEST_BATCH}", TEST_BATCH))
    reader = _read_from_folder(folder)
    if reader is None and not download_missing:
        raise DataError(
            f"CIFAR-10 not found in {folder}: expected {ARCHIVE.name}, or the extracted {BATCH_FOLDER} folder "
            f"({', '.join(TRAIN_BATCHES[:1])}...{TEST_BATCH}). Point data.data_dir at it, or set data.download=true to fetch it"
        )
    if reader is None:
        download(ARCHIVE, folder, mirror=mirror)
        reader = _archive_reader(folder / ARCHIVE.name)
    batches = {}
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        data, source = reader(name)
        batches[name] = parse_batch(data, source=source)
    train, test = [batches[name] for name in TRAIN_BATCHES], batches[TEST_BATCH]
    as_split = lambda parts: ImageSplit(torch.from_numpy(np.concatenate([p[0] for p in parts])),  # noqa: E731
                                        torch.from_numpy(np.concatenate([p[1] for p in parts])))  # fmt: skip
    return ImageClassificationData(NAME, as_split(train), as_split([test]), CLASSES)


@register_dataset(
    NAME,
    task="classification",
    description="CIFAR-10, 50,000 + 10,000 32x32 colour images in 10 classes (official python batches)",
)
def _cifar10(*, data_dir=None, download=False, mirror=None) -> ImageClassificationData:
    return load_cifar10(data_dir=data_dir, download_missing=download, mirror=mirror)
