"""``image-folder``: your own images, one subfolder per class (the layout torchvision's ``ImageFolder`` reads).

Two layouts are recognised (hidden files and folders are ignored everywhere)::

    root/<class>/**/*.jpg                  one pool; a seeded split holds out the test images
    root/train/<class>/**/*.png            given splits: train/ and, if present, val/ (or valid/) and test/
    root/val/<class>/...    root/test/<class>/...

Class names are the folder names, sorted (in the split layout, those of
``train/``; ``val/`` and ``test/`` may not add classes). Files ending in
``.jpg .jpeg .png .webp .bmp .gif`` (any case), at any depth inside a class
folder, are images; other files are ignored.

Loading only lists the files: decoding needs the size the model reads, which
the data source knows (:mod:`divekit.data.sources.image_folder`). Each image is
decoded once (:func:`divekit.data.image_decode.decode_image`) into a uint8
cache that later epochs and later runs reuse. The cache lives under the data
cache, ``$DIVEKIT_DATA/image-folder/`` (default ``~/.cache/divekit/image-folder/``),
one file per folder and size; nothing is ever written into your image folder.
A cache is keyed on the file list with every file's size and modification
time: add, remove, replace or touch an image and it is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from divekit import io
from divekit.data.download import cache_root
from divekit.data.image_decode import IMAGE_SUFFIXES, decode_image, is_image_file
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.data.registry import register_dataset
from divekit.errors import CheckpointError, ConfigError, DataError
from divekit.notes import note

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "test": "test"}
CACHE_FORMAT = "divekit-image-cache"
CACHE_VERSION = 1  # bump when decoding changes, so old caches are rebuilt


@dataclass(frozen=True)
class ImageFile:
    """One image of the folder: its path relative to the root, class, given split, size and modification time."""

    path: str
    label: int
    split: str  # "train", "val" or "test" in the split layout; "" in the pool layout
    bytes: int
    mtime_ns: int


@dataclass
class ImageFolder:
    """The images of a folder, listed (not decoded).

    Attributes:
        root: the folder, absolute.
        class_names: the class folder names, sorted; a label indexes them.
        files: every image, in a fixed order (split, class, path).
        layout: ``splits`` (train/val/test folders) or ``classes`` (one pool).
    """

    root: Path
    class_names: tuple[str, ...]
    files: list[ImageFile]
    layout: str
    ignored: int = 0
    task: str = field(default="classification", init=False)

    @property
    def name(self) -> str:
        return self.root.name

    def key(self, size: int) -> str:
        """The cache key: the decoding version, the size, and every file's path, size and modification time."""
        listing = [CACHE_VERSION, size, [[f.path, f.bytes, f.mtime_ns] for f in self.files]]
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()

    def cache_path(self, size: int) -> Path:
        """Where the decoded images of this folder at ``size`` are cached (one file per folder and size)."""
        folder_id = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        readable = re.sub(r"[^\w.-]", "_", self.root.name)[:40]
        return cache_root() / "image-folder" / f"{readable}-{folder_id}-{size}px.pt"


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> tuple[list[Path], int]:
    """Image files at any depth under ``folder`` (sorted) and how many other files were ignored."""
    images, ignored = [], 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if is_image_file(path):
                images.append(path)
            elif not name.startswith("."):
                ignored += 1
    return images, ignored


def is_image_folder(path: Path) -> bool:
    """Whether ``path`` looks like an image folder: a ``train/`` folder, or class subfolders holding images."""
    if not path.is_dir():
        return False
    dirs = _visible_dirs(path)
    if any(d.name == "train" for d in dirs):
        return True
    return len(dirs) >= 2 and any(any(is_image_file(f) for f in d.rglob("*")) for d in dirs[:20])


def scan_image_folder(root: str | os.PathLike) -> ImageFolder:
    """List the images of ``root`` in either layout (see the module docstring).

    Raises:
        DataError: not a folder, fewer than two classes, an empty class, images
            outside class folders, or classes in ``val/``/``test/`` that ``train/`` lacks.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"image folder {root} is not a folder; name a folder with one subfolder of images per class")
    dirs = _visible_dirs(root)
    if any(d.name == "train" for d in dirs):
        return _scan_splits(root, dirs)
    loose = [p for p in root.iterdir() if p.is_file() and is_image_file(p)]
    if loose:
        raise DataError(f"{root} holds {len(loose)} image(s) outside class folders (e.g. {loose[0].name}); put every "
                        "image in a subfolder named after its class")  # fmt: skip
    class_names = tuple(d.name for d in dirs)
    _check_classes(root, class_names)
    files, ignored = _scan_classes(root, root, class_names, split="")
    return ImageFolder(root, class_names, files, "classes", ignored)


def _scan_splits(root: Path, dirs: list[Path]) -> ImageFolder:
    others = [d.name for d in dirs if d.name not in SPLIT_FOLDERS]
    if others:
        raise DataError(f"{root} has a train/ folder and also {others[0]}/; in the split layout it may hold only "
                        "train/, val/ (or valid/) and test/, each with one subfolder per class")  # fmt: skip
    if sum(SPLIT_FOLDERS[d.name] == "val" for d in dirs) > 1:
        raise DataError(f"{root} has both val/ and valid/; keep one validation folder")
    class_names = tuple(d.name for d in _visible_dirs(root / "train"))
    _check_classes(root / "train", class_names)
    files, ignored = [], 0
    for folder in dirs:
        split = SPLIT_FOLDERS[folder.name]
        extra = sorted({d.name for d in _visible_dirs(folder)} - set(class_names))
        if extra:
            raise DataError(f"{folder} has a class folder {extra[0]!r} that train/ lacks; the classes come from train/")
        present = tuple(c for c in class_names if (folder / c).is_dir())
        found, skipped = _scan_classes(root, folder, present, split=split, labels=class_names)
        files += found
        ignored += skipped
    return ImageFolder(root, class_names, files, "splits", ignored)


def _check_classes(folder: Path, class_names: tuple[str, ...]) -> None:
    if len(class_names) < 2:
        raise DataError(f"{folder} has {len(class_names)} class subfolder(s); classification needs at least two, "
                        "one subfolder of images per class")  # fmt: skip


def _scan_classes(root: Path, folder: Path, present: tuple[str, ...], *, split: str,
                  labels: tuple[str, ...] | None = None) -> tuple[list[ImageFile], int]:  # fmt: skip
    files, ignored = [], 0
    for name in present:
        images, skipped = _images_under(folder / name)
        ignored += skipped
        if not images and split in ("", "train"):
            raise DataError(f"class folder {folder / name} holds no images ({' '.join(IMAGE_SUFFIXES)})")
        label = (labels or present).index(name)
        for path in images:
            try:
                stat = path.stat()
            except OSError as err:  # a dangling link, a file removed while we list
                raise DataError(f"{path}: cannot read it ({err.strerror or err})") from err
            files.append(ImageFile(path.relative_to(root).as_posix(), label, split, stat.st_size, stat.st_mtime_ns))
    return files, ignored


@dataclass
class DecodedImages:
    """The images of a folder decoded at one size.

    Attributes:
        images: uint8 ``(N, C, size, size)``, one row per readable file, in file order.
        readable: the indices (into the folder's ``files``) of those rows.
        bad: ``(path, reason)`` of every file that could not be decoded.
        cache: the cache file; ``from_cache`` whether it was read rather than built.
        seconds: time spent decoding or reading the cache.
    """

    images: torch.Tensor
    readable: list[int]
    bad: list[tuple[str, str]]
    cache: Path
    from_cache: bool
    seconds: float


def decode_folder(folder: ImageFolder, *, size: int, workers: int | None = None) -> DecodedImages:
    """The folder's images at ``size``: from the cache if it matches the folder, else decoded and cached."""
    start = time.perf_counter()
    path, key = folder.cache_path(size), folder.key(size)
    cached = read_cache(path, key)
    if cached is not None:
        images, bad = cached
        return DecodedImages(images, _readable(folder, bad), bad, path, True, time.perf_counter() - start)
    images, bad = _decode_all(folder, size=size, workers=workers)
    write_cache(path, {"format": CACHE_FORMAT, "version": CACHE_VERSION, "key": key, "root": str(folder.root),
                       "size": size, "images": images, "bad": [list(b) for b in bad]})  # fmt: skip
    return DecodedImages(images, _readable(folder, bad), bad, path, False, time.perf_counter() - start)


def _readable(folder: ImageFolder, bad: list[tuple[str, str]]) -> list[int]:
    broken = {p for p, _ in bad}
    return [i for i, f in enumerate(folder.files) if f.path not in broken]


def _decode_all(folder: ImageFolder, *, size: int, workers: int | None) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    """Decode every file (Pillow releases the GIL while decoding, so threads run in parallel)."""
    from tqdm import tqdm

    def one(f: ImageFile) -> np.ndarray | str:
        try:
            return decode_image(folder.root / f.path, size=size)
        except DataError as err:
            return str(err).removeprefix(f"{folder.root / f.path}: ")

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(one, folder.files), total=len(folder.files), desc=f"decoding {folder.name}",
                            unit="img", leave=False, disable=None))  # fmt: skip
    arrays = [r for r in results if not isinstance(r, str)]
    bad = [(f.path, r) for f, r in zip(folder.files, results) if isinstance(r, str)]
    channels = max((a.shape[0] for a in arrays), default=1)
    stacked = np.stack([np.repeat(a, channels // a.shape[0], axis=0) for a in arrays]) if arrays else (
        np.zeros((0, channels, size, size), dtype=np.uint8))  # a gray image among colour ones becomes R = G = B
    return torch.from_numpy(stacked), bad


def read_cache(path: Path, key: str) -> tuple[torch.Tensor, list[tuple[str, str]]] | None:
    """The cached images and bad files, or ``None`` when there is no cache or it belongs to another listing."""
    if not path.is_file():
        return None
    try:
        cached = io.load(path)
    except CheckpointError:
        note(f"the image cache {path} is damaged; decoding the images again")
        return None
    if not isinstance(cached, dict) or cached.get("format") != CACHE_FORMAT or cached.get("key") != key:
        return None
    return cached["images"], [(p, r) for p, r in cached["bad"]]


def write_cache(path: Path, content: dict[str, Any], *, log: Callable[[str], None] = note) -> None:
    """Save the cache atomically; a failed write costs only speed, so it is a note, not an error."""
    try:
        io.save(content, path)
    except (io.DiskWriteError, OSError) as err:
        log(f"could not write the image cache ({err}); the next run will decode the images again")


def folder_images(folder: ImageFolder, *, size: int) -> ImageClassificationData:
    """The readable images at ``size`` as in-memory data: ``test/`` as the test split, everything else as train.

    For looking at a folder (``divekit data show``); training splits it as
    :mod:`divekit.data.sources.image_folder` says.
    """
    decoded = decode_folder(folder, size=size)
    files = [folder.files[i] for i in decoded.readable]
    labels = torch.tensor([f.label for f in files], dtype=torch.long)
    is_test = torch.tensor([f.split == "test" for f in files], dtype=torch.bool)
    split = lambda rows: ImageSplit(decoded.images[rows], labels[rows])  # noqa: E731
    return ImageClassificationData(folder.name, split(~is_test), split(is_test), folder.class_names)


@register_dataset(
    "image-folder",
    task="classification",
    description="your own images, one subfolder per class (or under train/, val/, test/), named by data.data_dir",
)
def load_image_folder(*, data_dir: str | os.PathLike | None = None, **_: object) -> ImageFolder:
    if data_dir is None:
        raise ConfigError("the image-folder data set reads the folder named by data.data_dir; set it to a folder "
                          "with one subfolder of images per class")  # fmt: skip
    return scan_image_folder(data_dir)
