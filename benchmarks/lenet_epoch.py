"""One Fashion-MNIST LeNet epoch (data, training, evaluation): divekit vs the conventional loop.

The conventional loop is what tutorials write: torchvision's ``FashionMNIST``
data set with a per-sample ``ToTensor``, ``DataLoader(num_workers=4)``, the
same model, optimiser and batch size. Both run in this process, interleaved,
with the same thread count; the script prints each epoch's time, the median
of each path and their ratio.

    flock /work/cpu.lock python benchmarks/lenet_epoch.py --data-dir ../shared/data/fashion-mnist
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


def conventional_epoch(model: nn.Module, root: Path, batch_size: int, workers: int) -> tuple[float, float]:
    """Train one epoch and evaluate the tutorial way; return (seconds, test accuracy)."""
    import torchvision
    from torchvision import transforms

    to_tensor = transforms.ToTensor()
    train = torchvision.datasets.FashionMNIST(root, train=True, transform=to_tensor, download=False)
    test = torchvision.datasets.FashionMNIST(root, train=False, transform=to_tensor, download=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.9)
    start = time.perf_counter()
    model.train()
    for X, y in torch.utils.data.DataLoader(train, batch_size, shuffle=True, num_workers=workers):
        loss = F.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for X, y in torch.utils.data.DataLoader(test, batch_size, num_workers=workers):
            correct += (model(X).argmax(1) == y).sum().item()
    return time.perf_counter() - start, correct / len(test)


def divekit_epoch(data_dir: str, threads: int, seed: int) -> tuple[float, float, float]:
    """One epoch through divekit's trainer; return (seconds, test accuracy, training-step examples/s)."""
    from divekit.runs import resolve_config, train

    config = resolve_config("lenet", data="fashion-mnist", overrides={
        "data.data_dir": data_dir, "train.epochs": 1, "train.threads": threads,
        "train.progress": False, "train.seed": seed})  # fmt: skip
    result = train(config, write=False, log=lambda message: None)
    record = result.final
    return record["epoch_time_s"], record["test_acc"], record["train_examples_per_s"]


def torchvision_root(data_dir: Path, parent: Path | None = None) -> Path:
    """A new folder (in ``parent``, default the temporary folder) laid out as torchvision expects
    (``FashionMNIST/raw``), with the IDX files uncompressed."""
    root = Path(tempfile.mkdtemp(prefix="fmnist-", dir=parent))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in os.listdir(data_dir):
        os.symlink(data_dir.resolve() / name, raw / name)
        if name.endswith(".gz"):  # torchvision reads the uncompressed files
            import gzip
            import shutil

            with gzip.open(data_dir / name) as src, open(raw / name.removesuffix(".gz"), "wb") as dst:
                shutil.copyfileobj(src, dst)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the four Fashion-MNIST IDX files")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    from divekit.models import create_model
    from divekit.nn import apply_init

    torch.set_num_threads(args.threads)
    root = torchvision_root(Path(args.data_dir))
    conventional, ours, rates = [], [], []
    for repeat in range(args.repeats):
        torch.manual_seed(repeat)
        seconds, acc = conventional_epoch(apply_init(create_model("lenet"), "xavier"), root, 256, args.workers)
        conventional.append(seconds)
        print(f"conventional epoch {repeat + 1}: {seconds:6.2f}s  test acc {acc:.3f}", flush=True)
        seconds, acc, rate = divekit_epoch(args.data_dir, args.threads, repeat)
        ours.append(seconds)
        rates.append(rate)
        print(f"divekit      epoch {repeat + 1}: {seconds:6.2f}s  test acc {acc:.3f}  "
              f"{rate:,.0f} training examples/s", flush=True)  # fmt: skip
    conv, mine = statistics.median(conventional), statistics.median(ours)
    print(f"median epoch: conventional {conv:.2f}s ({60000 / conv:,.0f} examples/s), "
          f"divekit {mine:.2f}s ({60000 / mine:,.0f} examples/s); "
          f"divekit is {conv / mine:.2f}x faster per epoch; "
          f"divekit training steps: {statistics.median(rates):,.0f} examples/s")  # fmt: skip


if __name__ == "__main__":
    main()
