"""Training throughput of the book's CNNs: divekit's batch path vs the conventional per-sample loop.

For each model, at the book's input size, in one process and on the same
data (Fashion-MNIST, or the embedded digits without ``--data-dir``), it
times whole training steps (data + forward + backward + SGD update) of:

- ``divekit``: in-memory uint8 tensors, one ``index_select`` per batch, the
  uint8 -> float conversion and the resize done per *batch*
  (``TensorBatches`` + ``to_model_input``, what ``divekit train`` runs);
- ``conventional``: a ``Dataset`` applying torchvision v2 transforms
  (``ToDtype(scale=True)``, ``Resize``) to each *sample*, batched by a
  ``DataLoader`` (``num_workers`` 0, and 2 for the data-bound LeNet-BN);

the divekit path in the contiguous (NCHW) and the channels-last memory
layout, eager and through ``torch.compile``. Every configuration runs
``--repeats`` times interleaved with the others; the best time counts.

Usage::

    python benchmarks/cnn_throughput.py --data-dir /work/shared/data/fashion-mnist
    python benchmarks/cnn_throughput.py --models lenet-bn resnet18 --steps 5 --no-compile
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from divekit.data import load_dataset
from divekit.data.loader import TensorBatches
from divekit.models import create_model, get_model_entry
from divekit.nn.init import apply_init
from divekit.tasks.classification import to_model_input

# model -> (book input size, batch size measured); the 224x224 models at batch 64 to fit the CPU budget.
MODELS = {
    "lenet-bn": (28, 256),
    "alexnet": (224, 64),
    "vgg11-narrow": (224, 64),
    "nin": (224, 64),
    "resnet18": (96, 64),
}


class PerSample(Dataset):
    """The conventional pipeline: torchvision v2 transforms on one image at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int) -> None:
        self.images, self.labels = images, labels
        self.transform = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Resize((size, size), antialias=True)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[index]), self.labels[index]


def divekit_batches(images, labels, size, batch, channels_last) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for epoch in range(10**6):
        loader = TensorBatches((images, labels), batch_size=batch, shuffle=True, drop_last=True)
        loader.set_epoch(epoch)
        for X, y in loader:
            yield to_model_input(X, size=size, device=torch.device("cpu"), channels_last=channels_last), y


def conventional_batches(images, labels, size, batch, channels_last, workers) -> Iterator:
    loader = DataLoader(PerSample(images, labels, size), batch_size=batch, shuffle=True, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0)  # fmt: skip
    while True:
        for X, y in loader:
            yield (X.contiguous(memory_format=torch.channels_last) if channels_last else X), y


def make_runner(name: str, size: int, channels_last: bool, compiled: bool) -> Callable[[torch.Tensor, torch.Tensor], None]:
    torch.manual_seed(0)
    options = {"image_size": size} if "image_size" in get_model_entry(name).options() else {}
    model = apply_init(create_model(name, **options), "xavier").train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    net = torch.compile(model) if compiled else model

    def step(X: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(net(X), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def configurations(name: str, compile_too: bool) -> dict[str, tuple[str, bool, bool, int]]:
    """label -> (pipeline, channels_last, compiled, workers)."""
    configs = {"divekit contiguous": ("divekit", False, False, 0),
               "divekit channels-last": ("divekit", True, False, 0),
               "conventional contiguous": ("conventional", False, False, 0)}  # fmt: skip
    if name == "lenet-bn":
        configs["conventional contiguous, 2 workers"] = ("conventional", False, False, 2)
    if compile_too:
        for layout in ("contiguous", "channels-last"):
            configs[f"divekit {layout} compiled"] = ("divekit", layout == "channels-last", True, 0)
    return configs


def measure(name: str, images, labels, args) -> dict[str, float]:
    size, batch = MODELS[name]
    runs = {}
    for label, (pipe, cl, compiled, workers) in configurations(name, not args.no_compile).items():
        source = (divekit_batches(images, labels, size, batch, cl) if pipe == "divekit"
                  else conventional_batches(images, labels, size, batch, cl, workers))  # fmt: skip
        step = make_runner(name, size, cl, compiled)
        for _ in range(args.warmup + (2 if compiled else 0)):  # compiled: first calls compile forward and backward
            step(*next(source))
        runs[label] = (source, step)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeats):  # interleaved, so a busy moment does not hit one configuration only
        for label, (source, step) in runs.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                step(*next(source))
            best[label] = min(best[label], time.perf_counter() - started)
    return {label: args.steps * batch / seconds for label, seconds in best.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="Fashion-MNIST folder (default: the embedded digits)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--steps", type=int, default=2, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile configurations")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", data_dir=args.data_dir) if args.data_dir else load_dataset("digits")
    images, labels = data.train.images, data.train.labels
    print(f"# {data.name}, torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}")
    results = {}
    for name in args.models:
        results[name] = measure(name, images, labels, args)
        size, batch = MODELS[name]
        base = results[name]["conventional contiguous"]
        print(f"\n{name} ({size}x{size}, batch {batch})", flush=True)
        for label, rate in sorted(results[name].items(), key=lambda kv: -kv[1]):
            print(f"  {label:<38} {rate:9.1f} images/s  {rate / base:5.2f}x conventional contiguous", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"models": {n: {"size": MODELS[n][0], "batch": MODELS[n][1], "images_per_s": r}
                                  for n, r in results.items()}}, handle, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
