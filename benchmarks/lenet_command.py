"""The book's 10-epoch LeNet run as a whole command: divekit against the textbook script, as processes.

Each round runs, one after the other (the order turns every round):

- the textbook: ``python benchmarks/textbook_lenet.py`` (torchvision's data
  set, a 4-worker ``DataLoader``, the book's loop; see that file);
- divekit, exactly as a user types it:
  ``divekit train lenet --data fashion-mnist --data-dir DIR --epochs 10``
  (one contender per source tree given with ``--tree``).

It prints, per contender, the median over rounds of the whole command's wall
time and CPU time (the child's user + system, which other processes disturb
less), the median epoch (training + test accuracy; the textbook's own clock,
divekit's ``epoch_time_s``) and the final test accuracy, then the ratios
textbook / divekit of the whole command and of the epoch. The load average
is printed beside every run. Last, the FLOP/s of the last tree's training
steps (its median ``train_examples_per_s`` times LeNet's training FLOPs per
image, counted by PyTorch's ``FlopCounterMode``) as a fraction of the fp32
matmul peak measured right then with the run's thread count.

    python benchmarks/lenet_command.py --data-dir ../shared/data/fashion-mnist --rounds 3
    python benchmarks/lenet_command.py --data-dir ../shared/data/fashion-mnist \\
        --tree before=/tmp/divekit-before/src --tree after=src      # a commit against this one
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lenet_epoch import torchvision_root  # noqa: E402  (FashionMNIST/raw/ laid out as torchvision expects)
from processes import header_threads, load_note, median, run_history, run_timed, with_pythonpath  # noqa: E402

HERE = Path(__file__).resolve().parent
TEXTBOOK = "textbook"


def run_textbook(root: Path, epochs: int, src: str) -> dict:
    timed = run_timed([sys.executable, str(HERE / "textbook_lenet.py"), "--root", str(root), "--epochs", str(epochs)],
                      env=with_pythonpath(src))  # fmt: skip
    _check(timed, "the textbook script")
    epochs_seen = [json.loads(line) for line in timed.stdout.splitlines() if line.startswith("{")]
    return {"wall": timed.wall_s, "cpu": timed.cpu_s, "load": timed.load,
            "epoch": median([e["seconds"] for e in epochs_seen]), "test_acc": epochs_seen[-1]["test_acc"]}  # fmt: skip


def run_divekit(src: str, data_dir: str, epochs: int, scratch: Path) -> dict:
    out = Path(tempfile.mkdtemp(dir=scratch)) / "run"
    argv = [sys.executable, "-m", "divekit", "train", "lenet", "--data", "fashion-mnist", "--data-dir", data_dir,
            "--epochs", str(epochs), "--out", str(out)]  # fmt: skip
    timed = run_timed(argv, env=with_pythonpath(src), cwd=str(scratch))
    _check(timed, f"divekit from {src}")
    history = run_history(out)
    header = timed.stderr.splitlines()[0] if timed.stderr else ""
    return {"wall": timed.wall_s, "cpu": timed.cpu_s, "load": timed.load,
            "epoch": median([r["epoch_time_s"] for r in history]), "test_acc": history[-1]["test_acc"],
            "rate": median([r["train_examples_per_s"] for r in history]), "threads": header_threads(header) or 0,
            "header": header}  # fmt: skip


def fraction_of_peak(rate: float, threads: int) -> str:
    """LeNet's training-step FLOP/s at ``rate`` images/s against the fp32 matmul peak measured now at ``threads``."""
    sys.path.insert(0, str(HERE.parent / "src"))
    import torch
    from torch.nn import functional as F

    from divekit.bench import flops, matmul_peak
    from divekit.models import create_model

    torch.set_num_threads(threads)
    model, X, y = create_model("lenet"), torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
    per_image = flops(lambda: F.cross_entropy(model(X), y).backward()) / 256  # matmuls and convolutions
    peak = matmul_peak(torch.device("cpu"), torch.float32, seconds=2.0)
    return (f"{rate:,.0f} images/s x {per_image / 1e6:.2f} MFLOP = {rate * per_image / 1e9:.1f} GFLOP/s, "
            f"{100 * rate * per_image / peak:.0f}% of the fp32 matmul peak measured now ({peak / 1e9:.0f} GFLOP/s, "
            f"{threads} thread{'s' if threads > 1 else ''})")  # fmt: skip


def _check(timed, what: str) -> None:
    if timed.returncode != 0:
        raise SystemExit(f"{what} failed ({timed.returncode}):\n{timed.stderr[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the four Fashion-MNIST IDX files")
    parser.add_argument("--tree", action="append", metavar="NAME=SRC",
                        help="a divekit source tree to time (repeatable; default: this checkout's src)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    here_src = str(HERE.parent / "src")
    trees = dict(t.split("=", 1) for t in args.tree or [f"divekit={here_src}"])
    data_dir = str(Path(args.data_dir).resolve())
    print(load_note(), flush=True)
    cells: dict[str, list[dict]] = {name: [] for name in [TEXTBOOK, *trees]}
    with tempfile.TemporaryDirectory(prefix="divekit-lenet-command-") as tmp:
        root = torchvision_root(Path(data_dir), Path(tmp))
        for round_ in range(args.rounds):
            order = list(cells) if round_ % 2 == 0 else list(reversed(cells))
            for name in order:
                if name == TEXTBOOK:
                    cell = run_textbook(root, args.epochs, here_src)
                else:
                    cell = run_divekit(str(Path(trees[name]).resolve()), data_dir, args.epochs, Path(tmp))
                cells[name].append(cell)
                print(f"round {round_ + 1} {name:<9} wall {cell['wall']:7.1f}s  cpu {cell['cpu']:7.1f}s  "
                      f"epoch {cell['epoch']:5.2f}s  test acc {cell['test_acc']:.3f}  load {cell['load']:4.1f}  "
                      f"{cell.get('header', '')}", flush=True)  # fmt: skip
    summary = {name: {key: median([c[key] for c in runs]) for key in ("wall", "cpu", "epoch")}
               for name, runs in cells.items()}  # fmt: skip
    book = summary[TEXTBOOK]
    print(f"\nmedians over {args.rounds} rounds; {load_note()}")
    for name, s in summary.items():
        ratios = "" if name == TEXTBOOK else (
            f"  ->  whole command {book['wall'] / s['wall']:.2f}x (CPU {book['cpu'] / s['cpu']:.2f}x), "
            f"per epoch {book['epoch'] / s['epoch']:.2f}x faster than the textbook")  # fmt: skip
        print(f"{name:<9} whole {s['wall']:7.1f}s  cpu {s['cpu']:7.1f}s  epoch {s['epoch']:5.2f}s{ratios}")
    last = cells[list(trees)[-1]]
    print(f"LeNet's training steps ({list(trees)[-1]}): "
          f"{fraction_of_peak(median([c['rate'] for c in last]), max(c['threads'] for c in last))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
