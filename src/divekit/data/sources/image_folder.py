"""An image folder for the classification task: decoded at the model's input size, split, batched.

The folder's images are decoded once at the side length the model reads
(``task.options.resize``, else the model's own input size) through the
folder's cache (:func:`divekit.data.image_folder.decode_folder`), then served
exactly as any in-memory image data set (:class:`ImageSource`).

Splits:

- ``test``: the ``test/`` folder, or (one pool of class folders) a seeded
  ``task.options.test_split`` of every class: each class's files are ordered by
  a hash of ``data.split_seed`` and their path, and the first fraction is held
  out, so adding images to a folder moves few others between splits;
- ``val``: the ``val/`` folder, or ``data.val_split`` of the training images
  carved as for every data source (:func:`carve_validation`);
- ``train``: the rest.

The files of each split are saved in the run folder (``image_splits.json``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import torch

from divekit.data.image_folder import DecodedImages, ImageFolder, decode_folder
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.data.sources.base import carve_validation
from divekit.data.sources.images import ImageOptions, ImageSource, select_classes
from divekit.errors import ConfigError, DataError
from divekit.notes import note

SPLITS = ("train", "val", "test")


def stratified_holdout(paths: list[str], labels: list[int], fraction: float, *,
                       seed: int) -> tuple[list[int], list[int]]:  # fmt: skip
    """Positions ``(kept, held_out)``: ``round(fraction * n)`` of each class's ``n`` files held out.

    Each class's files are ranked by the SHA-256 of ``"{seed}:{path}"``, so the
    choice depends on nothing else, and every class with two or more files
    keeps at least one and (for ``fraction > 0``) gives at least one.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"task.options.test_split must be a fraction in [0, 1), got {fraction}")
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    held: set[int] = set()
    for members in by_class.values():
        ranked = sorted(members, key=lambda i: hashlib.sha256(f"{seed}:{paths[i]}".encode()).hexdigest())
        n = min(len(members) - 1, max(1, round(fraction * len(members)))) if fraction > 0 else 0
        held.update(ranked[:n])
    return [i for i in range(len(paths)) if i not in held], sorted(held)


class ImageFolderSource(ImageSource):
    """A user's image folder (see the module docstring); otherwise an :class:`ImageSource`."""

    def __init__(self, data: ImageFolder, options: ImageOptions, *, batch_size: int, eval_batch_size: int,
                 val_split: float = 0.0, split_seed: int = 0,
                 model_input_size: tuple[int, ...] | None = None) -> None:  # fmt: skip
        size = options.resize or (model_input_size[-1] if model_input_size else None)
        if size is None or size < 1:
            raise ConfigError(f"task.options.resize: the model has no input size of its own; set the side length the "
                              f"images of {data.root} are decoded to (e.g. 64)")  # fmt: skip
        self.folder = data
        self.decoded = decode_folder(data, size=size)
        report(data, self.decoded, skip=options.skip_bad_images)
        rows = self._split_rows(options, val_split=val_split, seed=split_seed)
        part = lambda name: ImageSplit(self.decoded.images[rows[name]], self._labels()[rows[name]])  # noqa: E731
        images = ImageClassificationData(data.name, part("train"), part("test"), data.class_names)
        super().__init__(images, options, batch_size=batch_size, eval_batch_size=eval_batch_size, val_split=0.0,
                         split_seed=split_seed, model_input_size=(images.in_channels, size, size))  # fmt: skip
        self.val = select_classes(dataclasses.replace(images, train=part("val")), options.classes).train
        files = [data.files[i].path for i in self.decoded.readable]
        self.split_files = {name: [files[r] for r in rows[name].tolist()] for name in SPLITS}

    def _labels(self) -> torch.Tensor:
        return torch.tensor([self.folder.files[i].label for i in self.decoded.readable], dtype=torch.long)

    def _split_rows(self, options: ImageOptions, *, val_split: float, seed: int) -> dict[str, torch.Tensor]:
        """Rows of the decoded images in each split."""
        files = [self.folder.files[i] for i in self.decoded.readable]
        if self.folder.layout == "splits":
            given = {name: [r for r, f in enumerate(files) if f.split == name] for name in SPLITS}
            if given["val"] and val_split > 0:
                raise ConfigError(f"{self.folder.root} has a val/ folder, its validation split; leave data.val_split "
                                  "at 0, or merge val/ into train/ to carve one")  # fmt: skip
        else:
            train, test = stratified_holdout([f.path for f in files], [f.label for f in files], options.test_split,
                                             seed=seed)  # fmt: skip
            given = {"train": train, "val": [], "test": test}
        if not given["train"]:
            raise DataError(f"{self.folder.root}: no readable training images")
        if not given["val"]:
            kept, val = carve_validation(len(given["train"]), val_split, seed=seed, what="training images")
            given["train"], given["val"] = [given["train"][i] for i in kept], [given["train"][i] for i in val]
        return {name: torch.tensor(given[name], dtype=torch.long) for name in SPLITS}

    def info(self) -> dict[str, Any]:
        folder = {"root": str(self.folder.root), "layout": self.folder.layout, "cache": str(self.decoded.cache),
                  "skipped_images": [p for p, _ in self.decoded.bad], "ignored_files": self.folder.ignored}  # fmt: skip
        if self.folder.layout == "classes":
            folder["test_split"] = self.options.test_split
        return {**super().info(), "image_folder": folder}

    def extras(self) -> dict[str, str]:
        return {"image_splits.json": json.dumps(self.split_files, indent=1, ensure_ascii=False) + "\n"}


def report(folder: ImageFolder, decoded: DecodedImages, *, skip: bool) -> None:
    """Say how the images were obtained; refuse unreadable ones unless ``skip``, else say how many were skipped."""
    count, seconds = len(decoded.readable), decoded.seconds
    if decoded.from_cache:
        note(f"read {count:,} decoded images of {folder.root} from the cache {decoded.cache} ({seconds:.2f}s)")
    else:
        rate = len(folder.files) / seconds if seconds > 0 else float("inf")
        note(f"decoded {len(folder.files):,} images of {folder.root} in {seconds:.1f}s ({rate:,.0f} images/s); "
             f"cached in {decoded.cache}")  # fmt: skip
    if not decoded.bad:
        return
    shown = "; ".join(f"{folder.root / p}: {r}" for p, r in decoded.bad[:3])
    more = f" (and {len(decoded.bad) - 3} more)" if len(decoded.bad) > 3 else ""
    if not skip:
        raise DataError(f"{len(decoded.bad)} image(s) cannot be read: {shown}{more}; fix or remove them, or set "
                        "task.options.skip_bad_images=true to train without them")  # fmt: skip
    note(f"skipped {len(decoded.bad)} unreadable image(s) of {folder.root} (listed in task.json): {shown}{more}")
