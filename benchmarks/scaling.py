"""Training throughput with 1 and 2 processes (torchrun + DDP, gloo on the CPU), and the speed-up.

    python benchmarks/scaling.py --fashion ../shared/data/fashion-mnist --timemachine ../shared/data/timemachine

Each configuration trains with `divekit train ... --nproc N` (N = 1, 2) and
reads the throughput that rank 0 recorded: training-step units/s and
whole-epoch units/s, both counting every process's examples (or tokens).
Each process gets cores / N threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def configurations(args: argparse.Namespace) -> dict[str, list[str]]:
    return {
        "LeNet, Fashion-MNIST, batch 256": ["lenet", "--data", "fashion-mnist", "--data-dir", args.fashion,
                                            "--epochs", str(args.epochs)],
        "LSTM LM, Time Machine chars, batch 32x35": ["lstm-lm", "--data", "timemachine", "--data-dir",
                                                     args.timemachine, "--epochs", str(args.lm_epochs)],
    }  # fmt: skip


def run(model_args: list[str], nproc: int, out: Path) -> dict:
    cores = len(os.sched_getaffinity(0))
    command = [sys.executable, "-m", "divekit", "train", *model_args, "--no-progress", "--out", str(out),
               "--threads", str(max(1, cores // nproc))]  # fmt: skip
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads((out / "metrics.json").read_text())[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion", required=True)
    parser.add_argument("--timemachine", required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lm-epochs", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scaling-"))
    for label, model_args in configurations(args).items():
        results = {}
        for nproc in (1, 2):
            record = run(model_args, nproc, work / f"{label.split(',')[0]}-{nproc}".replace(" ", "_"))
            unit = next(k.split("_")[1] for k in record if k.startswith("train_") and k.endswith("_per_s"))
            results[nproc] = (record[f"train_{unit}_per_s"], record[f"epoch_{unit}_per_s"], unit)
            print(f"{label}: {nproc} process(es): {results[nproc][0]:,.0f} {unit}/s in steps, "
                  f"{results[nproc][1]:,.0f} {unit}/s over the epoch", flush=True)  # fmt: skip
        print(f"{label}: speed-up with 2 processes: {results[2][0] / results[1][0]:.2f}x (steps), "
              f"{results[2][1] / results[1][1]:.2f}x (epoch)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
