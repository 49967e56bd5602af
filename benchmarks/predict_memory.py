"""Peak memory of `predict`, `translate` and `generate` over 1,000 and 10,000 inputs: streaming keeps it flat.

    python benchmarks/predict_memory.py [--work DIR]

Trains, each for one epoch on embedded data, a LeNet (digits), a seq2seq model
(numbers-fr) and a character GRU language model (pydoc). Then it runs, as child
processes, `divekit predict` on 1,000 and on 10,000 PNG files, `divekit
translate --input` on files of 1,000 and 10,000 English number phrases, and
`divekit generate --prompts` on files of 1,000 and 10,000 prefixes, and reports
each child's peak resident memory (ru_maxrss) and time.
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


def train(run: Path, *options: str) -> None:
    if not run.exists():
        subprocess.run([sys.executable, "-m", "divekit", "train", *options, "--epochs", "1", "--no-progress",
                        "--out", str(run)], check=True, capture_output=True)  # fmt: skip


def report(kind: str, command: list[str]) -> None:
    peak, seconds, lines = child_peak_rss_mb(command)
    print(f"{kind:<9} {lines:>6} inputs: peak RSS {peak:7.1f} MB, {seconds:5.1f}s ({lines / seconds:,.0f}/s)",
          flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="scratch folder (default: a temporary one)")
    parser.add_argument("--count", type=int, default=10_000, help="inputs of the large call (the small one: a tenth)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="predict-mem-"))
    from PIL import Image

    from divekit.data import load_dataset

    counts = (args.count // 10, args.count)
    train(work / "lenet", "lenet")
    train(work / "seq2seq", "seq2seq", "--data", "numbers-fr")
    train(work / "gru", "gru-lm", "--data", "pydoc", "--max-tokens", "20000")
    images = load_dataset("digits").test.images
    phrases = [source for source, _ in load_dataset("numbers-fr").held_out]
    for count in counts:
        folder = work / f"images-{count}"
        folder.mkdir(exist_ok=True)
        for i in range(count):
            path = folder / f"{i:05d}.png"
            if not path.exists():
                Image.fromarray(images[i % len(images), 0].numpy()).save(path)
        (work / f"sentences-{count}.txt").write_text("".join(f"{phrases[i % len(phrases)]}\n" for i in range(count)))
        (work / f"prompts-{count}.txt").write_text("".join(f"the {phrases[i % len(phrases)]}\n" for i in range(count)))
    divekit = [sys.executable, "-m", "divekit"]
    for count in counts:
        report("predict", [*divekit, "predict", str(work / "lenet"), "--image", str(work / f"images-{count}")])
    for count in counts:
        report("translate", [*divekit, "translate", str(work / "seq2seq"), "--input", str(work / f"sentences-{count}.txt")])
    for count in counts:
        report("generate", [*divekit, "generate", str(work / "gru"), "--prompts", str(work / f"prompts-{count}.txt"),
                            "--length", "20"])  # fmt: skip


if __name__ == "__main__":
    main()
