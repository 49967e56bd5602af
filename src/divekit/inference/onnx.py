"""Run an exported classifier with onnxruntime instead of PyTorch (``predict --backend onnxruntime``).

The graph comes from a file written by ``divekit export --format onnx``, or is
exported from the run in memory (and checked against PyTorch, as every export is).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from divekit.errors import CheckpointError, ConfigError
from divekit.runs.load import LoadedRun
from divekit.runs.onnx import checked_bytes, require_onnx, run_graphs, session

BACKENDS = ("torch", "onnxruntime")


def onnx_facts(model_bytes: bytes, *, source: str) -> dict[str, Any]:
    """The ``divekit`` metadata an export wrote into the file."""
    import onnx

    try:
        proto = onnx.load_from_string(model_bytes)
    except Exception as err:  # noqa: BLE001 - any parse failure means the same thing to the user
        raise CheckpointError(f"{source} is not an ONNX file ({type(err).__name__})") from err
    entries = {p.key: p.value for p in proto.metadata_props}
    if "divekit" not in entries:
        raise CheckpointError(f"{source} was not written by divekit export (no divekit metadata); export the run again")
    return json.loads(entries["divekit"])


class OnnxClassifier:
    """``images (N, C, H, W)`` floats in [0, 1] -> logits, computed by onnxruntime.

    Args:
        model_bytes: an exported classifier graph.
        threads: onnxruntime's intra-op threads (``None``: its own choice).
    """

    def __init__(self, model_bytes: bytes, *, threads: int | None = None, source: str = "<onnx>") -> None:
        self.facts = onnx_facts(model_bytes, source=source)
        if self.facts.get("task") != "classification":
            raise ConfigError(f"{source} holds a {self.facts.get('task')} model; the onnxruntime backend classifies images")
        self.session = session(model_bytes, threads=threads)

    @classmethod
    def from_run(cls, run: LoadedRun, *, onnx_file: str | Path | None = None, threads: int | None = None) -> OnnxClassifier:
        """The run's classifier: from ``onnx_file`` (checked to be this run's shape) or exported in memory."""
        require_onnx()
        if onnx_file is None:
            data, _ = checked_bytes(run_graphs(run)[0])
            return cls(data, threads=threads, source=str(run.folder))
        path = Path(onnx_file)
        if not path.is_file():
            raise ConfigError(f"{path}: no such ONNX file; export the run first (divekit.runs.onnx.export_onnx)")
        classifier = cls(path.read_bytes(), threads=threads, source=str(path))
        if classifier.facts.get("input_size") != run.info.get("input_size"):
            raise CheckpointError(f"{path} takes inputs of size {classifier.facts.get('input_size')} but the run "
                                  f"{run.folder} was trained on {run.info.get('input_size')}; export this run again")  # fmt: skip
        return classifier

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        X = np.ascontiguousarray(images.detach().cpu().float().numpy())
        (logits,) = self.session.run(["logits"], {"images": X})
        return torch.from_numpy(logits)
