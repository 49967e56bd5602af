"""Peak memory of `divekit predict` over 1,000 and 10,000 images: streaming keeps it flat.

    python benchmarks/predict_memory.py [--work DIR]

Trains a LeNet for one epoch on the embedded digits, writes 10,000 PNG files,
then runs `divekit predict` as a child process on 1,000 and on all 10,000 of
them and reports each child's peak resident memory (ru_maxrss) and time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child_peak_rss_mb(command: list[str]) -> tuple[float, float, int]:
    """Run ``command``; return (peak RSS of that child alone in MB, seconds, lines printed)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not the max over all children
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"{command} failed with {child.returncode}")
        seconds = time.perf_counter() - started
        out.seek(0)
        lines = len(out.read().splitlines())
    return usage.ru_maxrss / 1024, seconds, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="scratch folder (default: a temporary one)")
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="predict-mem-"))
    from PIL import Image

    from divekit.data import load_dataset

    run = work / "run"
    if not run.exists():
        subprocess.run([sys.executable, "-m", "divekit", "train", "lenet", "--epochs", "1", "--no-progress",
                        "--out", str(run)], check=True, capture_output=True)  # fmt: skip
    images = load_dataset("digits").test.images
    few, many = work / "few", work / "many"
    for folder, count in ((few, args.images // 10), (many, args.images)):
        folder.mkdir(exist_ok=True)
        for i in range(count):
            path = folder / f"{i:05d}.png"
            if not path.exists():
                Image.fromarray(images[i % len(images), 0].numpy()).save(path)
    for folder in (few, many):
        peak, seconds, lines = child_peak_rss_mb([sys.executable, "-m", "divekit", "predict", str(run),
                                                  "--image", str(folder)])  # fmt: skip
        print(f"{lines:>6} images: peak RSS {peak:7.1f} MB, {seconds:5.1f}s ({lines / seconds:,.0f} images/s)")


if __name__ == "__main__":
    main()
