"""Offline fine-tuning demonstration (notes §5): pretrain on one task, fine-tune on a small other one.

Two experiments, ResNet-18 (the book's layout) at 32x32:

- ``fashion-split``: pretrain on Fashion-MNIST's classes 0-5 (T-shirt, trouser,
  pullover, dress, coat, sandal; all 36,000 training images), then learn
  classes 6-9 (shirt, sneaker, bag, ankle boot) from a small subset;
- ``mnist``: pretrain on the 60,000 MNIST digits, then learn all of
  Fashion-MNIST from a small subset.

For each subset size, every method trains for the same number of epochs and is
scored on the whole test split of the target classes:

- ``scratch``: Xavier initialisation at the book's ResNet-18 learning rate 0.05;
- ``scratch, lr 0.01``: the same at the fine-tuning runs' learning rate (a control);
- ``fine-tune``: the pretrained weights, a new Xavier head trained 10x faster (the notes' recipe);
- ``fine-tune, frozen backbone``: the pretrained weights, only the new head trained.

With ``--seeds``, each size is drawn several times (``task.subset_seed``) and
the table gives the mean and the range over the draws. Everything is local.
Results go to ``OUT/summary.json``; a rerun reuses the pretraining run and the
finished rows (``--methods`` runs only the named ones).

    python benchmarks/finetune_demo.py fashion-split --fashion-mnist ../shared/data/fashion-mnist
    python benchmarks/finetune_demo.py mnist --mnist ../shared/data/mnist --fashion-mnist ../shared/data/fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from statistics import mean

from divekit.runs import resolve_config, train

MODEL = "resnet18"
COMMON = {"task.options.resize": 32, "data.batch_size": 64, "train.progress": False}
# label -> (uses the pretrained weights, overrides)
METHODS = {
    "scratch": (False, {"optim.lr": 0.05, "model.init": "xavier"}),
    "scratch, lr 0.01": (False, {"optim.lr": 0.01, "model.init": "xavier"}),
    "fine-tune": (True, {"optim.lr": 0.01, "model.head_lr_mult": 10.0}),
    "fine-tune, frozen backbone": (True, {"optim.lr": 0.01, "model.head_lr_mult": 10.0,
                                          "model.freeze_backbone": True}),
}
# experiment -> (pretraining data, its overrides), (target data, its overrides)
EXPERIMENTS = {
    "fashion-split": (("fashion-mnist", {"task.options.classes": [0, 1, 2, 3, 4, 5]}),
                      ("fashion-mnist", {"task.options.classes": [6, 7, 8, 9]})),
    "mnist": (("mnist", {}), ("fashion-mnist", {})),
}


def run(out: Path, data: str, data_dir: str, overrides: dict, threads: int | None) -> dict:
    config = resolve_config(MODEL, data=data, overrides={**COMMON, "data.data_dir": data_dir,
                                                          "train.threads": threads, **overrides})  # fmt: skip
    started = time.perf_counter()
    result = train(config, out_dir=out)
    return {"test_acc": result.final["test_acc"], "test_acc_at_best_val": (result.best or result.final)["test_acc"],
            "train_acc": result.final["train_acc"], "seconds": time.perf_counter() - started}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=list(EXPERIMENTS))
    parser.add_argument("--mnist", help="folder with the MNIST IDX files (experiment mnist)")
    parser.add_argument("--fashion-mnist", required=True, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--out", help="default: runs/finetune-EXPERIMENT")
    parser.add_argument("--pretrain-epochs", type=int, default=1)
    parser.add_argument("--pretrain-subset", type=int, help="pretrain on this many images (a quick check)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every fine-tuning and scratch run")
    parser.add_argument("--subsets", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="subset draws per size")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--methods", nargs="*", choices=list(METHODS), help="only these (default: all)")
    args = parser.parse_args(argv)
    (source, source_overrides), (target, target_overrides) = EXPERIMENTS[args.experiment]
    folders = {"mnist": args.mnist, "fashion-mnist": args.fashion_mnist}
    if folders[source] is None:
        parser.error(f"the {args.experiment} experiment needs --{source}")
    out = Path(args.out or f"runs/finetune-{args.experiment}")
    pretrained = out / f"pretrain-{source}"
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    summary = {key if " | seed " in key or key == "pretrain" else f"{key} | seed 0": row for key, row in summary.items()}
    if "pretrain" not in summary:
        pretrain = {"optim.lr": 0.05, "model.init": "xavier", "train.epochs": args.pretrain_epochs,
                    "task.options.train_subset": args.pretrain_subset, **source_overrides}  # fmt: skip
        summary["pretrain"] = run(pretrained, source, folders[source], pretrain, args.threads)
    print(json.dumps({"pretrain": summary["pretrain"]}), flush=True)
    for size in args.subsets:
        for seed in args.seeds:
            for label, (uses_weights, overrides) in METHODS.items():
                key = f"{size} {label} | seed {seed}"
                if args.methods and label not in args.methods or key in summary:
                    continue
                extra = {"task.options.train_subset": size, "task.options.subset_seed": seed, "train.epochs": args.epochs,
                         **target_overrides, **overrides}  # fmt: skip
                if uses_weights:
                    extra["model.weights"] = str(pretrained)
                name = f"{target}-{size}-{label.replace(', ', '-').replace(' ', '-')}" + (f"-seed{seed}" if seed else "")
                summary[key] = run(out / name, target, folders[target], extra, args.threads)
                print(json.dumps({key: summary[key]}), flush=True)
                (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(table(summary))
    return 0


def table(summary: dict) -> str:
    """Mean (and range, over subset draws) of each size and method."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for key, row in summary.items():
        if key != "pretrain":
            size, label = key.split(" | ")[0].split(" ", 1)
            groups.setdefault((int(size), label), []).append(row)
    lines = ["| training images | method | draws | test acc, last epoch: mean (range) | best epoch's test acc: mean | "
             "train acc | time per run |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    order = {label: i for i, label in enumerate(METHODS)}
    for size, label in sorted(groups, key=lambda g: (g[0], order.get(g[1], len(order)))):
        rows = groups[size, label]
        last = [r["test_acc"] for r in rows]
        spread = f" ({min(last):.3f}-{max(last):.3f})" if len(rows) > 1 else ""
        lines.append(f"| {size} | {label} | {len(rows)} | {mean(last):.3f}{spread} | "
                     f"{mean(r['test_acc_at_best_val'] for r in rows):.3f} | {mean(r['train_acc'] for r in rows):.3f} | "
                     f"{mean(r['seconds'] for r in rows):.0f} s |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
