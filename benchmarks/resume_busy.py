"""kill -9, then resume while another process keeps a core busy: are the final weights bit-identical? (issue 18)

Every command is typed as a user would, with the default thread count:

1. ``divekit train lenet --epochs E --out ref`` on the quiet machine: the
   uninterrupted run;
2. per trial: the same command into a new folder, killed with SIGKILL at a
   random moment after its first checkpoint (within the first half of the
   first run's training time); then, while a second process
   keeps one core busy with a pure-Python loop, ``divekit train --resume``.
   The resumed run must use the thread count the run recorded (its header
   says so), and its final weights must equal the uninterrupted run's, tensor
   for tensor, bit for bit;
3. a control that shows the comparison can fail: one more trial resumed with
   an explicit ``--threads`` other than the recorded one (the run warns that
   bit-identity is given up), whose weights differ.

Run it alone on a quiet machine (the first run's default assumes nothing else
runs):

    python benchmarks/resume_busy.py --trials 5
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import header_threads, one_core_busy, run_history  # noqa: E402
from divekit.io import load  # noqa: E402


def divekit(*args: str) -> list[str]:
    return [sys.executable, "-m", "divekit", *args]


def threads_in(stderr: str) -> str:
    threads = header_threads(stderr)
    return "?" if threads is None else str(threads)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load(folder / "checkpoints" / "last.pt")["model"]


def killed_run(folder: Path, epochs: int, rng: random.Random, within: float) -> str:
    """Start the run, kill -9 it at a random moment in the ``within`` seconds after its first checkpoint; what its
    header said."""
    run = subprocess.Popen(divekit("train", "lenet", "--epochs", str(epochs), "--no-progress", "--out", str(folder)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)  # fmt: skip
    while not (folder / "checkpoints" / "last.pt").exists():
        if run.poll() is not None:
            raise SystemExit(f"the run ended before its first checkpoint: {run.stderr.read()[-2000:]}")
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, within))
    os.killpg(run.pid, signal.SIGKILL)
    _, err = run.communicate()
    if run.returncode != -signal.SIGKILL:
        raise SystemExit(f"the run finished before it was killed (exit {run.returncode}); give more --epochs")
    return threads_in(err)


def resumed_under_load(folder: Path, extra: list[str]) -> tuple[str, str]:
    """Resume while a second process keeps a core busy; the header's thread count and any warning line."""
    with one_core_busy():
        done = subprocess.run(divekit("train", "--resume", "--out", str(folder), "--no-progress", *extra),
                              capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"resume failed: {done.stderr[-2000:]}")
    warning = next((line for line in done.stderr.splitlines() if "bit" in line), "")
    return threads_in(done.stderr), warning


def identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> int:
    """How many of the tensors are equal bit for bit."""
    return sum(torch.equal(a[k], b[k]) for k in a)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="divekit-resume-busy-") as tmp:
        ref_dir = Path(tmp) / "ref"
        done = subprocess.run(divekit("train", "lenet", "--epochs", str(args.epochs), "--no-progress",
                                      "--out", str(ref_dir)), capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        ref = weights(ref_dir)
        # kill within the first half of the training, whatever the machine's speed (start-up not counted)
        within = sum(r["epoch_time_s"] for r in run_history(ref_dir)) / 2
        print(f"uninterrupted run: {threads_in(done.stderr)} thread(s), {len(ref)} tensors")
        print("| trial | first leg | killed after | resumed with a core busy | tensors bit-identical |")
        print("|---|---|---|---|---|")
        same_all = True
        for trial in range(args.trials + 1):
            control = trial == args.trials
            folder = Path(tmp) / f"trial-{trial}"
            first = killed_run(folder, args.epochs, rng, within)
            at = load(folder / "checkpoints" / "last.pt")["progress"]
            recorded = int(first) if first.isdigit() else 1
            extra = ["--threads", str(1 if recorded != 1 else 2)] if control else []
            resumed, warning = resumed_under_load(folder, extra)
            same = identical(weights(folder), ref)
            label = f"control ({' '.join(extra)})" if control else str(trial + 1)
            warned = f"; warned: {warning.strip()}" if warning else ""
            print(f"| {label} | {first} thread(s) | epoch {at['epoch']}, batch {at['batch']} | {resumed} thread(s)"
                  f"{warned} | {same} of {len(ref)} |", flush=True)  # fmt: skip
            if not control:
                same_all &= same == len(ref)
    print("all trials bit-identical" if same_all else "SOME TRIALS DIFFER")
    return 0 if same_all else 1


if __name__ == "__main__":
    sys.exit(main())
