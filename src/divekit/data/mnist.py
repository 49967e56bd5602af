"""MNIST and Fashion-MNIST from their official IDX files.

The files are read from a folder (see :mod:`divekit.data.download`), each
either gzipped under its official name or uncompressed without ``.gz``.
Besides the IDX structure, the decompressed content is checked against the
published MD5, so a corrupted file is reported and never used.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from divekit.data.download import RemoteFile, dataset_folder, download, find_local
from divekit.data.idx import read_idx
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.errors import DataError

FASHION_MNIST_CLASSES = (
    "t-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
DIGIT_CLASSES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class IdxFile:
    """One official IDX file: name, checksum of the .gz, MD5 of its contents, expected shape, size of the .gz."""

    name: str
    gz_sha256: str
    raw_md5: str
    shape: tuple[int, ...]
    gz_size: int = 0


@dataclass(frozen=True)
class IdxDataset:
    """An IDX image data set: its four files and where to download them."""

    name: str
    files: dict[str, IdxFile]  # keys: train-images, train-labels, test-images, test-labels
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]

    def remote(self, key: str) -> RemoteFile:
        f = self.files[key]
        return RemoteFile(f.name, f.gz_sha256, tuple(m + f.name for m in self.mirrors), size=f.gz_size)


FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    files={
        "train-images": IdxFile("train-images-idx3-ubyte.gz",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "f4a8712d7a061bf5bd6d2ca38dc4d50a", (60000, 28, 28), gz_size=26421880),
        "train-labels": IdxFile("train-labels-idx1-ubyte.gz",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "9018921c3c673c538a1fc5bad174d6f9", (60000,), gz_size=29515),
        "test-images": IdxFile("t10k-images-idx3-ubyte.gz",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "8181f5470baa50b63fa0f6fddb340f0a", (10000, 28, 28), gz_size=4422102),
        "test-labels": IdxFile("t10k-labels-idx1-ubyte.gz",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "15d484375f8d13e6eb1aabb0c3f46965", (10000,), gz_size=5148),
    },
    mirrors=(
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    class_names=FASHION_MNIST_CLASSES,
)  # fmt: skip

MNIST = IdxDataset(
    name="mnist",
    files={
        "train-images": IdxFile("train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "6bbc9ace898e44ae57da46a324031adb", (60000, 28, 28), gz_size=9912422),
        "train-labels": IdxFile("train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "a25bea736e30d166cdddb491f175f624", (60000,), gz_size=28881),
        "test-images": IdxFile("t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "2646ac647ad5339dbf082846283269ea", (10000, 28, 28), gz_size=1648877),
        "test-labels": IdxFile("t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "27ae3e4e09519cfbb04c329615203637", (10000,), gz_size=4542),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    class_names=DIGIT_CLASSES,
)  # fmt: skip


def _missing_message(spec: IdxDataset, folder: Path, missing: list[str]) -> str:
    names = ", ".join(spec.files[k].name for k in missing)
    return (
        f"{spec.name} files not found in {folder}: missing {names} (gzipped, or uncompressed without .gz). "
        f"Put the official files there, point data.data_dir at their folder, "
        f"or set data.download=true to fetch them"
    )


def _load_array(path: Path, expected: IdxFile, verify: bool) -> np.ndarray:
    array = read_idx(path)
    if array.shape != expected.shape or array.dtype != np.uint8:
        raise DataError(f"{path}: expected uint8 data of shape {expected.shape}, found {array.dtype} {array.shape}")
    if verify:
        digest = hashlib.md5(usedforsecurity=False)
        digest.update(_header(array) + array.tobytes())
        if digest.hexdigest() != expected.raw_md5:
            raise DataError(
                f"{path}: checksum mismatch (MD5 of the contents is {digest.hexdigest()}, "
                f"expected {expected.raw_md5}); the file is corrupt: delete it and download it again"
            )
    return array


def _header(array: np.ndarray) -> bytes:
    import struct

    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)


def load_idx_dataset(
    spec: IdxDataset,
    *,
    data_dir: str | os.PathLike | None = None,
    download_missing: bool = False,
    mirror: str | None = None,
    verify: bool = True,
) -> ImageClassificationData:
    """Load ``spec`` from its folder, downloading missing files only if asked.

    Args:
        data_dir: the folder with the files; default ``$DIVEKIT_DATA/<name>``
            or the per-user cache.
        download_missing: fetch missing files from the official mirrors.
        mirror: a base URL that replaces the official mirrors (may be local HTTP).
        verify: check each file's contents against the published MD5.
    """
    names = [f.name for f in spec.files.values()]
    folder = dataset_folder(spec.name, data_dir, names)
    missing = [k for k, f in spec.files.items() if find_local(folder, f.name) is None]
    if missing and not download_missing:
        raise DataError(_missing_message(spec, folder, missing))
    for key in missing:
        download(spec.remote(key), folder, mirror=mirror)
    arrays = {k: _load_array(find_local(folder, f.name), f, verify) for k, f in spec.files.items()}  # type: ignore[arg-type]
    as_split = lambda prefix: ImageSplit(  # noqa: E731
        torch.from_numpy(arrays[f"{prefix}-images"]).unsqueeze(1),
        torch.from_numpy(arrays[f"{prefix}-labels"].astype(np.int64)),
    )
    return ImageClassificationData(spec.name, as_split("train"), as_split("test"), spec.class_names)
