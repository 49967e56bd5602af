"""Classify image files with a trained run, streaming them in batches.

Memory stays bounded however many files are given: images are decoded one
batch at a time. Each file is checked before it is decoded: it must exist,
be an image PIL can identify, and not be a decompression bomb. Images are
turned upright by their EXIF orientation, as viewers show them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from divekit.data.image_decode import IMAGE_SUFFIXES, decode_image
from divekit.errors import ConfigError, DataError
from divekit.data.sources.images import to_model_input
from divekit.runs.load import LoadedRun, load_run



@dataclass(frozen=True)
class Prediction:
    """The top classes of one image, most probable first."""

    path: Path
    top: list[tuple[str, float]]


def expand_image_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders replaced by the image files inside them, sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out


def load_image(path: Path, *, channels: int, size: int) -> np.ndarray:
    """Decode ``path`` to uint8 ``(channels, size, size)``, upright, refusing bad or hostile files.

    The same decoding as an image folder's (:func:`divekit.data.image_decode.decode_image`): EXIF
    orientation applied, transparency on white, 16-bit gray scaled, so a picture is seen as in training.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    return decode_image(path, size=size, channels=channels)


def _batches(paths: Iterable[Path], size: int) -> Iterator[list[Path]]:
    batch: list[Path] = []
    for path in paths:
        batch.append(path)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def classifier_forward(run: LoadedRun, *, backend: str = "torch",
                       onnx_file: str | Path | None = None) -> Callable[[torch.Tensor], torch.Tensor]:  # fmt: skip
    """What turns model inputs into logits: the run's PyTorch model, or its ONNX graph on onnxruntime."""
    from divekit.inference.onnx import BACKENDS, OnnxClassifier

    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "torch":
        if onnx_file is not None:
            raise ConfigError("onnx_file is read by the onnxruntime backend only; set backend='onnxruntime'")
        return run.model
    return OnnxClassifier.from_run(run, onnx_file=onnx_file)


def predict_images(
    run_dir: str | Path,
    paths: Iterable[Path],
    *,
    top_k: int = 3,
    batch_size: int = 256,
    which: str = "best",
    device: str = "cpu",
    model_file: str | None = None,
    backend: str = "torch",
    onnx_file: str | Path | None = None,
) -> Iterator[Prediction]:
    """Yield the ``top_k`` classes of each image, in order, ``batch_size`` images at a time.

    ``backend="onnxruntime"`` computes the logits with onnxruntime on the CPU, from
    ``onnx_file`` (written by ``divekit export --format onnx``) or from the run exported in memory.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    run = load_run(run_dir, which=which, device=device, model_file=model_file)
    if run.task != "classification":
        raise ConfigError(f"{run_dir} is a {run.task} run; `predict` classifies images")
    channels, size, _ = run.info["input_size"]
    names = run.info["class_names"]
    k = min(top_k, len(names))
    dev = next(run.model.parameters()).device
    forward = classifier_forward(run, backend=backend, onnx_file=onnx_file)
    for batch in _batches(paths, batch_size):
        images = torch.from_numpy(np.stack([load_image(p, channels=channels, size=size) for p in batch]))
        with torch.inference_mode():
            probs = forward(to_model_input(images, size=size, device=dev)).softmax(dim=1)
        values, indices = probs.topk(k, dim=1)
        for path, v, i in zip(batch, values.tolist(), indices.tolist()):
            yield Prediction(path, [(names[c], p) for c, p in zip(i, v)])
