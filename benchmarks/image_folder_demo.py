"""Your own image folder, end to end: from scratch and fine-tuned from torchvision-layout ResNet-18 weights.

1. Builds an image folder like the book's hot-dog set from Fashion-MNIST: two classes (T-shirt/top and shirt,
   the pair Fashion-MNIST classifiers confuse most), 500 PNGs each, ``train/`` (400 a class) and ``test/`` (100).
2. Makes "ImageNet" weights in torchvision's layout and under torchvision's file name,
   ``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth`` in a temporary hub cache: the real ImageNet weights
   cannot be downloaded here, so ``resnet18-imagenet`` is pretrained on Fashion-MNIST's *other* eight classes
   (itself started from a random torchvision file, so it learns with ImageNet's input convention) and its
   weights are saved with a 1,000-way ``fc`` as torchvision's are.
3. Trains ``resnet18-imagenet`` on the folder from scratch, then fine-tunes it with ``--weights torchvision``
   (notes §5: new Xavier head at 10x the learning rate), both with a seeded validation split that picks the
   best epoch, and scores both on the folder's ``test/``.

Every step is a ``divekit`` command, printed as it runs. The first training run decodes the folder (its
cache is empty); the second reads the cache. Reported: test accuracy (at the best validation epoch), wall
time, images/s of the first epoch including the decoding, and of the later epochs; and, for photo-sized
files (the same images as 512x512 JPEGs), decoding against reading the cache.

    python benchmarks/image_folder_demo.py --fashion-mnist ../shared/data/fashion-mnist --out /tmp/folder-demo
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
import torchvision
from PIL import Image

CLASSES = {0: "t-shirt", 6: "shirt"}  # Fashion-MNIST labels -> folder names
OTHERS = "1,2,3,4,5,7,8,9"
TORCHVISION_FILE = "resnet18-f37072fd.pth"
COMMON = ["--resize", "64", "--batch-size", "64", "--no-progress"]
RECIPES = {  # the existing fine-tuning demo's settings (benchmarks/finetune_demo.py)
    "scratch": ["--optimizer", "sgd", "--lr", "0.05", "--init", "xavier"],
    "fine-tune": ["--optimizer", "sgd", "--lr", "0.01", "--weights", "torchvision", "--head-lr-mult", "10"],
}


def build_folder(fashion: str, root: Path, *, per_class: int, test_per_class: int) -> None:
    """``root/{train,test}/<class>/NNNN.png`` from the first ``per_class`` training images of each class."""
    from divekit.data import load_dataset

    data = load_dataset("fashion-mnist", data_dir=fashion)
    for label, name in CLASSES.items():
        images = data.train.images[data.train.labels == label][:per_class, 0].numpy()
        for i, pixels in enumerate(images):
            split = "test" if i >= per_class - test_per_class else "train"
            path = root / split / name / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)


def divekit(args: list[str], env: dict[str, str]) -> tuple[str, float]:
    """Run ``divekit ARGS`` (printed first); return its stderr and wall time."""
    print("$ divekit " + " ".join(shlex.quote(a) for a in args), flush=True)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "divekit", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.exit(f"divekit failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    notes = [line for line in proc.stderr.splitlines() if line.startswith("divekit:")]
    print("\n".join(notes), flush=True)
    return proc.stderr, seconds


def torchvision_layout(run: Path, target: Path) -> None:
    """The run's last weights as torchvision's file: its keys, with a fresh 1,000-way ``fc``."""
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    reference = torchvision.models.resnet18(weights=None).state_dict()
    state["fc.weight"], state["fc.bias"] = reference["fc.weight"], reference["fc.bias"]
    assert set(state) == set(reference) and all(state[k].shape == reference[k].shape for k in state)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)


def summarise(run: Path, stderr: str, seconds: float) -> dict:
    """Test accuracy at the best validation epoch, wall time and images/s (first epoch with decoding, later)."""
    history = json.loads((run / "metrics.json").read_text())
    best = max(history, key=lambda r: r["val_acc"])  # first maximum: the trainer's choice (checkpoints/best.pt)
    decoded = re.search(r"decoded ([\d,]+) images of .* in ([\d.]+)s", stderr)
    cached = re.search(r"read ([\d,]+) decoded images .* \(([\d.]+)s\)", stderr)
    prepare_s = float((decoded or cached).group(2))
    train_images = history[0]["epoch_time_s"] * history[0]["epoch_examples_per_s"]
    later = history[1:]
    return {
        "test_acc_at_best_val": best["test_acc"], "best_epoch": best["epoch"], "val_acc": best["val_acc"],
        "last_test_acc": history[-1]["test_acc"], "wall_s": round(seconds, 1),
        "cache": "built (decoded)" if decoded else "read", "prepare_s": prepare_s,
        "first_epoch_images_per_s": round(train_images / (prepare_s + history[0]["epoch_time_s"]), 1),
        "later_epochs_images_per_s": round(sum(r["epoch_examples_per_s"] for r in later) / max(1, len(later)), 1),
    }  # fmt: skip


def decode_rates(folder: Path, out: Path, *, side: int = 512, size: int = 64) -> dict:
    """Decoding against the cache, for photo-sized files: the folder's images as ``side x side`` RGB JPEGs."""
    from divekit.data.image_folder import decode_folder, scan_image_folder

    photos = out / "photos"
    for path in sorted(folder.rglob("*.png")):
        target = photos / path.relative_to(folder).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").resize((side, side), Image.Resampling.BICUBIC).save(target, quality=90)
    os.environ["DIVEKIT_DATA"] = str(out / "cache")
    timings = {}
    for attempt in ("decoded", "from the cache"):
        started = time.perf_counter()
        decoded = decode_folder(scan_image_folder(photos), size=size)
        timings[attempt] = time.perf_counter() - started
        assert decoded.from_cache == (attempt == "from the cache")
    count = len(decoded.readable)
    return {"images": count, "side": side, "size": size,
            **{f"{k}_s": round(v, 2) for k, v in timings.items()},
            **{f"{k}_images_per_s": round(count / v) for k, v in timings.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-mnist", required=True, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--out", default="runs/image-folder-demo")
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--pretrain-subset", type=int, default=8000)
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, help="CPU threads of every run (default: divekit's choice)")
    parser.add_argument("--decode-only", action="store_true", help="only time decoding against the cache")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    if out.exists():
        sys.exit(f"{out} exists; choose a new --out")
    folder = out / "fashion-hotdog"
    build_folder(args.fashion_mnist, folder, per_class=args.per_class, test_per_class=args.per_class // 5)
    if args.decode_only:
        print(json.dumps(decode_rates(folder, out), indent=2))
        return 0
    threads = ["--threads", str(args.threads)] if args.threads else []
    env = {**os.environ, "DIVEKIT_DATA": str(out / "cache"), "TORCH_HOME": str(out / "torch-random")}
    random_file = out / "torch-random" / "hub" / "checkpoints" / TORCHVISION_FILE
    random_file.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), random_file)
    divekit(["train", "resnet18-imagenet", "--data", "fashion-mnist", "--data-dir", args.fashion_mnist,
             "--classes", OTHERS, "--train-subset", str(args.pretrain_subset), "--epochs", str(args.pretrain_epochs),
             *COMMON, *RECIPES["scratch"][:4], "--weights", "torchvision", *threads,
             "--out", str(out / "pretrain")], env)  # fmt: skip
    env["TORCH_HOME"] = str(out / "torch")
    torchvision_layout(out / "pretrain", out / "torch" / "hub" / "checkpoints" / TORCHVISION_FILE)
    results = {}
    for method, recipe in RECIPES.items():
        run = out / method
        stderr, seconds = divekit(["train", "resnet18-imagenet", "--data-dir", str(folder), "--val-split", "0.1",
                                   "--epochs", str(args.epochs), *COMMON, *recipe, *threads,
                                   "--out", str(run)], env)  # fmt: skip
        results[method] = summarise(run, stderr, seconds)
    divekit(["evaluate", str(out / "fine-tune")], env)
    held_out_shirt = folder / "test" / "shirt" / f"{args.per_class - 1:04d}.png"
    divekit(["predict", str(out / "fine-tune"), "--image", str(held_out_shirt)], env)
    results["decoding 512x512 JPEGs"] = decode_rates(folder, out)
    (out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
