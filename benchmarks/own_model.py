"""Your own model, as a learner writes it: a hand-written MLP and CNN trained on Fashion-MNIST with one `fit` call each.

The images come through a plain ``torch.utils.data.DataLoader`` (no divekit
data set), exactly as a notebook following the notes would build it; the
models are the ones in ``examples/my_cnn.py``. Prints the final test accuracy,
the training time and the command-line equivalent.

    python benchmarks/own_model.py --data-dir ../shared/data/fashion-mnist [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import divekit  # noqa: E402
from divekit.data.mnist import FASHION_MNIST, load_idx_dataset  # noqa: E402
from my_cnn import MLP, SmallCNN  # noqa: E402


def loaders(data_dir: str, batch_size: int) -> tuple[DataLoader, DataLoader]:
    data = load_idx_dataset(FASHION_MNIST, data_dir=data_dir)
    as_float = lambda split: TensorDataset(split.images.float() / 255, split.labels)  # noqa: E731
    train = DataLoader(as_float(data.train), batch_size=batch_size, shuffle=True)
    test = DataLoader(as_float(data.test), batch_size=1024)
    return train, test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="own-model-results.json")
    args = parser.parse_args(argv)
    train_iter, test_iter = loaders(args.data_dir, 256)
    rows = {}
    for name, make, lr in (("MLP", MLP, 0.1), ("SmallCNN", SmallCNN, 0.1)):
        torch.manual_seed(0)  # the same initial weights on every run (PyTorch seeds itself at random otherwise)
        model = make()
        started = time.perf_counter()
        result = divekit.fit(model, train_iter, test=test_iter, epochs=args.epochs, lr=lr, device="cpu",
                             config={"train.progress": False})  # fmt: skip
        rows[name] = {"test_acc": result.final["test_acc"], "train_acc": result.final["train_acc"],
                      "train_loss": result.final["train_loss"], "seconds": time.perf_counter() - started,
                      "images_per_s": result.final["train_examples_per_s"], "epochs": args.epochs, "lr": lr}  # fmt: skip
        print(f"{name}: test acc {rows[name]['test_acc']:.4f} after {args.epochs} epochs "
              f"({rows[name]['seconds']:.0f} s, {rows[name]['images_per_s']:,.0f} images/s)", flush=True)  # fmt: skip
    Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
