"""Train the book's Fashion-MNIST CNN table (d2l ch. 7-8) and print it beside the book's numbers.

Profiles (settings as data, below):

- ``gpu``: the book's settings exactly: input size, learning rate, batch size,
  10 epochs, Xavier initialisation, plain SGD.
- ``cpu``: what a 2-core CPU can afford: LeNet-BN at the book's settings; the
  large-input models with the book's architecture, learning rate and batch
  size, but at a smaller input and for fewer epochs (stated per row).

``--dry-run`` runs every row end to end at tiny settings (2 steps of an 512-image
subset, small inputs) on the CPU, to check the script before a GPU run.

Usage::

    python benchmarks/book_table.py --profile gpu --data-dir ~/data/fashion-mnist --out runs/book-gpu
    python benchmarks/book_table.py --profile cpu --data-dir /work/shared/data/fashion-mnist --out runs/book-cpu
    python benchmarks/book_table.py --dry-run --data-dir /work/shared/data/fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from divekit.runs import RunConfig, resolve_config, train

# label -> (model, book resize, book lr, book batch, book test accuracy after 10 epochs)
BOOK = {
    "AlexNet": ("alexnet", 224, 0.01, 128, 0.883),
    "VGG-11/4": ("vgg11-narrow", 224, 0.05, 128, 0.920),
    "NiN": ("nin", 224, 0.1, 128, 0.790),
    "LeNet-BN, scratch": ("lenet-bn", 28, 1.0, 256, 0.807),
    "LeNet-BN, nn.BatchNorm": ("lenet-bn-torch", 28, 1.0, 256, None),
    "ResNet-18": ("resnet18", 96, 0.05, 256, 0.893),
}
# label -> (resize, epochs) per profile; lr and batch always the book's.
PROFILES = {
    "gpu": {label: (size, 10) for label, (_, size, _, _, _) in BOOK.items()},
    "cpu": {
        "LeNet-BN, scratch": (28, 10),
        "LeNet-BN, nn.BatchNorm": (28, 10),
        "ResNet-18": (32, 5),
        "VGG-11/4": (32, 5),
        "AlexNet": (72, 5),
        "NiN": (72, 5),
    },
}
DRY_RUN_SIZES = {"alexnet": 67, "nin": 67, "vgg11-narrow": 32, "resnet18": 32}


def row_config(label: str, size: int, epochs: int, args: argparse.Namespace) -> RunConfig:
    """The run config of one row, checked against the book's recipe."""
    model, _, lr, batch, _ = BOOK[label]
    overrides = {"data.data_dir": args.data_dir, "task.options.resize": size, "train.epochs": epochs,
                 "train.device": args.device, "train.progress": False, "train.threads": args.threads}  # fmt: skip
    if args.dry_run:
        overrides.update({"task.options.resize": DRY_RUN_SIZES.get(model, size), "task.options.train_subset": 512,
                          "data.batch_size": 256, "train.epochs": 1})  # fmt: skip
    config = resolve_config(model, data="fashion-mnist", overrides=overrides)
    assert config.optim.lr == lr and (args.dry_run or config.data.batch_size == batch), "recipe differs from the book"
    return config


def run_row(label: str, size: int, epochs: int, args: argparse.Namespace, out: Path) -> dict:
    model, book_size, lr, _, book_acc = BOOK[label]
    config = row_config(label, size, epochs, args)
    folder = out / model
    started = time.perf_counter()
    result = train(config, out_dir=folder)
    final = result.final
    return {
        "label": label, "model": model, "resize": config.task.options["resize"], "book_resize": book_size,
        "epochs": final["epoch"], "lr": lr, "batch": config.data.batch_size, "book_test_acc": book_acc,
        "test_acc": final["test_acc"], "train_acc": final["train_acc"], "train_loss": final["train_loss"],
        "seconds": time.perf_counter() - started, "run": str(folder),
    }  # fmt: skip


def markdown(rows: list[dict]) -> str:
    lines = ["| model | resize (book) | epochs | lr | batch | test acc | book test acc | train acc | time |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        book = f"{r['book_test_acc']:.3f}" if r["book_test_acc"] is not None else "-"
        lines.append(f"| {r['label']} | {r['resize']} ({r['book_resize']}) | {r['epochs']} | {r['lr']} | {r['batch']} "
                     f"| {r['test_acc']:.3f} | {book} | {r['train_acc']:.3f} | {r['seconds'] / 60:.1f} min |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="gpu")
    parser.add_argument("--data-dir", required=True, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--out", default="runs/book-table", help="parent folder of the run folders")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", nargs="*", help="labels of the rows to run (default: all); "
                        "rows already in OUT/table.json are kept")
    parser.add_argument("--dry-run", action="store_true", help="tiny settings on the CPU, to test the script")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.out = "cpu", str(Path(args.out) / "dry-run")
    out = Path(args.out)
    table = out / "table.json"
    done = {r["label"]: r for r in json.loads(table.read_text())} if table.exists() else {}  # rows of earlier runs
    for label, (size, epochs) in PROFILES[args.profile].items():
        if args.only and label not in args.only:
            continue
        done[label] = run_row(label, size, epochs, args, out)
        print(json.dumps(done[label]), flush=True)
        out.mkdir(parents=True, exist_ok=True)
        table.write_text(json.dumps(list(done.values()), indent=2))
    print(markdown(list(done.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
