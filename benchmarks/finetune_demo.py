"""Offline fine-tuning demonstration (notes §5): pretrain on MNIST, fine-tune on small Fashion-MNIST sets.

1. Pretrain ResNet-18 (the book's layout, 32x32 inputs) on all 60,000 MNIST digits.
2. For each Fashion-MNIST training subset size, train for the same number of
   epochs three ways, and report the test accuracy on all 10,000 test images:
   - ``scratch``: Xavier initialisation, the book's ResNet-18 learning rate (and,
     as a control, the fine-tuning runs' backbone learning rate 0.01);
   - ``fine-tune``: the MNIST weights, a new Xavier head trained 10x faster;
   - ``fine-tune, frozen``: the MNIST weights, only the new head trained.

Everything is local: the data comes from ``--mnist`` and ``--fashion-mnist``.

Usage::

    python benchmarks/finetune_demo.py --mnist /work/shared/data/mnist \\
        --fashion-mnist /work/shared/data/fashion-mnist --out runs/finetune-demo
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from divekit.train import resolve_config, train

MODEL = "resnet18"
COMMON = {"task.resize": 32, "data.batch_size": 64, "train.progress": False}
# label -> overrides for the Fashion-MNIST runs (model.weights is filled in with the pretrained run).
METHODS = {
    "scratch": {"optim.lr": 0.05, "model.init": "xavier"},
    "scratch, lr 0.01": {"optim.lr": 0.01, "model.init": "xavier"},
    "fine-tune": {"optim.lr": 0.01, "model.head_lr_mult": 10.0},
    "fine-tune, frozen backbone": {"optim.lr": 0.01, "model.head_lr_mult": 10.0, "model.freeze_backbone": True},
}


def run(out: Path, data: str, data_dir: str, overrides: dict, threads: int | None) -> dict:
    config = resolve_config(MODEL, data=data, overrides={**COMMON, "data.data_dir": data_dir,
                                                          "train.threads": threads, **overrides})  # fmt: skip
    started = time.perf_counter()
    result = train(config, out_dir=out)
    return {"test_acc": result.final["test_acc"], "best_test_acc": result.best["test_acc"],
            "train_acc": result.final["train_acc"], "seconds": time.perf_counter() - started}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, help="folder with the MNIST IDX files")
    parser.add_argument("--fashion-mnist", required=True, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--out", default="runs/finetune-demo")
    parser.add_argument("--pretrain-epochs", type=int, default=1)
    parser.add_argument("--pretrain-subset", type=int, help="pretrain on this many MNIST images (a quick check)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every Fashion-MNIST run")
    parser.add_argument("--subsets", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--threads", type=int)
    parser.add_argument("--methods", nargs="*", choices=list(METHODS), help="only these (default: all); "
                        "an existing pretraining run and earlier results in OUT/summary.json are reused")
    args = parser.parse_args(argv)
    out = Path(args.out)
    pretrained = out / "pretrain-mnist"
    pretrain = {"optim.lr": 0.05, "model.init": "xavier", "train.epochs": args.pretrain_epochs,
                "task.train_subset": args.pretrain_subset}  # fmt: skip
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    if "pretrain" not in summary:
        summary["pretrain"] = run(pretrained, "mnist", args.mnist, pretrain, args.threads)
    print(json.dumps({"pretrain": summary["pretrain"]}), flush=True)
    for size in args.subsets:
        for label, overrides in METHODS.items():
            if args.methods and label not in args.methods:
                continue
            extra = {"task.train_subset": size, "train.epochs": args.epochs, **overrides}
            if label != "scratch":
                extra["model.weights"] = str(pretrained)
            folder = out / f"fmnist-{size}-{label.replace(', ', '-').replace(' ', '-')}"
            summary[f"{size} {label}"] = run(folder, "fashion-mnist", args.fashion_mnist, extra, args.threads)
            print(json.dumps({f"{size} {label}": summary[f"{size} {label}"]}), flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("| Fashion-MNIST training images | method | test acc (last epoch) | best epoch's test acc | time |")
    print("|---|---|---|---|---|")
    for key, row in sorted(summary.items(), key=lambda kv: int(kv[0].split()[0]) if kv[0] != "pretrain" else 0):
        if key != "pretrain":
            size, label = key.split(" ", 1)
            print(f"| {size} | {label} | {row['test_acc']:.3f} | {row['best_test_acc']:.3f} | {row['seconds']:.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
