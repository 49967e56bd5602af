"""Export a run's weights for use outside divekit: safetensors (no pickle at all), a plain state_dict, or ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from divekit.errors import ConfigError
from divekit.io import atomic_write_bytes, save
from divekit.runs.load import load_run

FORMATS = ("safetensors", "pt", "onnx")


def export_weights(run_dir: str | Path, out: str | Path, *, fmt: str = "safetensors", which: str = "best",
                   model_file: str | None = None) -> Path:
    """Write the ``which`` checkpoint's model weights of ``run_dir`` to ``out``.

    ``safetensors`` files hold raw tensors and a JSON header only, so loading
    them can never run code; the header records the model name and options.
    ``pt`` writes a ``state_dict`` loadable with ``torch.load(weights_only=True)``.
    ``onnx`` writes the model's graph and weights, checked by onnxruntime first
    (see :func:`divekit.runs.onnx.export_onnx`, which also returns the differences it measured);
    a seq2seq run gives two files beside ``out`` and the first is returned.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        from divekit.runs.onnx import export_onnx

        return export_onnx(run_dir, out, which=which, model_file=model_file)[0].path
    run = load_run(run_dir, which=which, model_file=model_file)
    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    out = Path(out)
    if fmt == "pt":
        save(state, out)
        return out
    from safetensors.torch import save as to_safetensors

    metadata = {"format": "pt", "divekit_model": run.config.model.name,
                "divekit_model_options": json.dumps(run.info.get("model_options", {}))}  # fmt: skip
    atomic_write_bytes(out, to_safetensors(_unshare(state), metadata=metadata))
    return out


def _unshare(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights): give each its own copy."""
    seen: set[int] = set()
    out = {}
    for key, tensor in state.items():
        pointer = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if pointer in seen else tensor
        seen.add(pointer)
    return out
