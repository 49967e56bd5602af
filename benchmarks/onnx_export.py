"""ONNX export: onnxruntime's largest difference from PyTorch per family, and inference throughput of both.

1. Trains a one-epoch run of each family (embedded data), exports it with
   :func:`divekit.runs.onnx.export_onnx` and prints the largest absolute difference
   the export check measured (random inputs at batch sizes 1 and 5).
2. Images per second of LeNet (1x28x28) and the book's ResNet-18 (1x96x96) at
   batch 1 and 64, PyTorch (eval, inference mode) vs onnxruntime (CPU), both on
   ``--threads`` threads: the median of ``--rounds`` rounds of ``--seconds`` each.

Usage::

    python benchmarks/onnx_export.py --threads 2
    python benchmarks/onnx_export.py --skip-families --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

FAMILIES = {
    "classifier (lenet)": ("lenet", {}),
    "language model (gru-lm)": ("gru-lm", {"data.name": "pydoc", "task.options.max_tokens": 20000}),
    "language model (lstm-lm, 2 layers)": ("lstm-lm", {"data.name": "pydoc", "task.options.max_tokens": 20000,
                                                       "model.options.num_layers": 2}),
    "seq2seq (GRU)": ("seq2seq", {}),
    "seq2seq (Bahdanau attention)": ("seq2seq-attention", {}),
    "seq2seq (Transformer)": ("transformer", {}),
}  # fmt: skip
SPEED_MODELS = {"LeNet": ("lenet", [1, 28, 28]), "ResNet-18": ("resnet18", [1, 96, 96])}


def family_differences() -> None:
    from divekit.runs import resolve_config, train
    from divekit.runs.onnx import export_onnx

    with tempfile.TemporaryDirectory() as folder:
        for label, (model, overrides) in FAMILIES.items():
            config = resolve_config(model, overrides={"train.progress": False, "train.epochs": 1, **overrides})
            train(config, out_dir=Path(folder) / model, log=lambda m: None)
            exported = export_onnx(Path(folder) / model, Path(folder) / f"{model}.onnx")
            diffs = {e.role: e.max_abs_diff for e in exported}
            print(json.dumps({"family": label, "max_abs_diff": diffs}), flush=True)


def rate(fn, batch: int, *, seconds: float, rounds: int) -> float:
    """Median images/s over ``rounds`` rounds of about ``seconds`` each (after a warm-up)."""
    for _ in range(3):
        fn()
    rates = []
    for _ in range(rounds):
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            fn()
            count += 1
        rates.append(count * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def throughput(threads: int, *, seconds: float, rounds: int) -> None:
    from divekit.models import create_model
    from divekit.runs.onnx import checked_bytes, image_classifier_graph, session

    torch.set_num_threads(threads)
    for label, (name, size) in SPEED_MODELS.items():
        model = create_model(name).eval()
        data, diff = checked_bytes(image_classifier_graph(model, size))
        runtime = session(data, threads=threads)
        for batch in (1, 64):
            X = torch.rand(batch, *size)
            with torch.inference_mode():
                torch_rate = rate(lambda: model(X), batch, seconds=seconds, rounds=rounds)
            feed = {"images": X.numpy()}
            ort_rate = rate(lambda: runtime.run(None, feed), batch, seconds=seconds, rounds=rounds)
            print(json.dumps({"model": label, "batch": batch, "threads": threads, "torch_images_per_s": round(torch_rate, 1),
                              "onnxruntime_images_per_s": round(ort_rate, 1), "ratio": round(ort_rate / torch_rate, 2),
                              "max_abs_diff": diff}), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-families", action="store_true")
    args = parser.parse_args()
    if not args.skip_families:
        family_differences()
    throughput(args.threads, seconds=args.seconds, rounds=args.rounds)


if __name__ == "__main__":
    main()
