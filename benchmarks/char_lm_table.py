"""The book's character-level language-model table on The Time Machine (notes §6.4-§6.7), run with divekit.

Common settings, as the book trains them: the first 10,000 character tokens,
batch 32, 35 steps, sequential partitioning, SGD lr 1, gradient norm clipped
to 1, 500 epochs. Each row trains one model into ``OUT/<row>``, records the
final training perplexity and the tokens/s, and continues "time traveller"
and "traveller" greedily for 50 characters.

    # one row at a time, so heavy jobs of other users can take turns:
    for row in rnn-scratch rnn gru-scratch gru lstm-scratch lstm deep-lstm; do
        flock /work/cpu.lock python benchmarks/char_lm_table.py --row $row --data-dir ../shared/data/timemachine
    done
    python benchmarks/char_lm_table.py --report          # the Markdown table of the finished rows
    python benchmarks/char_lm_table.py --dry-run --data-dir ../shared/data/timemachine   # 2 epochs, every row
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from divekit.io import atomic_write_json, atomic_write_text  # noqa: E402

# row -> (label, model, model options, lr, the book's perplexity)
ROWS = {
    "rnn-scratch": ("RNN, scratch", "rnn-lm", {"scratch": True, "num_hiddens": 512}, 1.0, 1.0),
    "rnn": ("`nn.RNN`", "rnn-lm", {"num_hiddens": 256}, 1.0, 1.3),
    "gru-scratch": ("GRU, scratch", "gru-lm", {"scratch": True, "num_hiddens": 256}, 1.0, 1.1),
    "gru": ("`nn.GRU`", "gru-lm", {"num_hiddens": 256}, 1.0, 1.0),
    "lstm-scratch": ("LSTM, scratch", "lstm-lm", {"scratch": True, "num_hiddens": 256}, 1.0, 1.3),
    "lstm": ("`nn.LSTM`", "lstm-lm", {"num_hiddens": 256}, 1.0, 1.1),
    "deep-lstm": ("deep LSTM, 2 layers", "lstm-lm", {"num_layers": 2, "num_hiddens": 256}, 2.0, 1.0),
}
PREFIXES = ("time traveller", "traveller")


def run_row(row: str, *, data_dir: str, out: Path, epochs: int, threads: int) -> dict:
    """Train one row of the table; return its results (also written to ``out/<row>.json``)."""
    from divekit.runs import resolve_config, train
    from divekit.inference.generate import TextGenerator

    label, model, options, lr, book = ROWS[row]
    overrides = {"data.data_dir": data_dir, "task.options.max_tokens": 10_000, "data.batch_size": 32, "task.options.num_steps": 35,
                 "task.options.sampling": "sequential", "optim.optimizer": "sgd", "optim.lr": lr, "optim.clip_grad": 1.0,
                 "train.epochs": epochs, "train.threads": threads, "train.progress": False, "train.seed": 0}  # fmt: skip
    overrides.update({f"model.options.{k}": v for k, v in options.items()})
    config = resolve_config(model, data="timemachine", overrides=overrides)
    folder = out / row
    started = time.perf_counter()
    result = train(config, out_dir=folder, log=lambda message: None)
    wall = time.perf_counter() - started
    generator = TextGenerator.from_run(folder, which="last")
    history = result.history
    record = {
        "row": row, "label": label, "model": model, "options": options, "lr": lr, "book_ppl": book,
        "epochs": len(history), "final_ppl": history[-1]["train_ppl"],
        "train_tokens_per_s": statistics.median(r["train_tokens_per_s"] for r in history),
        "epoch_tokens_per_s": statistics.median(r["epoch_tokens_per_s"] for r in history),
        "wall_s": wall, "threads": threads,
        "generated": {p: generator.complete(p, length=50) for p in PREFIXES},
        "command": _command(row, data_dir, epochs, threads),
    }  # fmt: skip
    atomic_write_json(out / f"{row}.json", record)
    return record


def _command(row: str, data_dir: str, epochs: int, threads: int) -> str:
    label, model, options, lr, _ = ROWS[row]
    flags = {"scratch": "--scratch", "num_hiddens": "--num-hiddens", "num_layers": "--num-layers"}
    extra = " ".join(flags[k] if v is True else f"{flags[k]} {v}" for k, v in options.items())
    return (f"divekit train {model} {extra} --data timemachine --data-dir {data_dir} --max-tokens 10000 "
            f"--batch-size 32 --num-steps 35 --lr {lr:g} --clip-grad 1 --epochs {epochs} --threads {threads}")


def report(out: Path) -> str:
    """The Markdown table (and generated text) of every finished row."""
    records = [json.loads((out / f"{row}.json").read_text()) for row in ROWS if (out / f"{row}.json").exists()]
    lines = ["| model | hidden | lr | book perplexity | divekit perplexity | tokens/s (steps) | tokens/s (epoch) | time |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in records:
        lines.append(f"| {r['label']} | {r['options']['num_hiddens']} | {r['lr']:g} | {r['book_ppl']:.1f} | "
                     f"{r['final_ppl']:.3f} | {r['train_tokens_per_s']:,.0f} | {r['epoch_tokens_per_s']:,.0f} | "
                     f"{r['wall_s'] / 60:.1f} min |")  # fmt: skip
    lines += ["", "Greedy continuations of 50 characters (from the last checkpoint):", ""]
    for r in records:
        for prefix, text in r["generated"].items():
            lines.append(f"- {r['label']}, `{prefix}`: `{text}`")
    lines += ["", "Commands:", "", "```bash", *(r["command"] for r in records), "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", choices=list(ROWS), action="append", help="rows to run (default: all)")
    parser.add_argument("--data-dir", help="folder holding timemachine.txt")
    parser.add_argument("--out", default="runs/char-lm", help="folder for the runs and results")
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="print the table of the finished rows")
    parser.add_argument("--dry-run", action="store_true", help="2 epochs of every row, into a scratch folder")
    args = parser.parse_args()
    out = Path(args.out)
    if args.report:
        text = report(out)
        atomic_write_text(out / "table.md", text)
        print(text)
        return
    if not args.data_dir:
        parser.error("--data-dir FOLDER holding timemachine.txt is required")
    if args.dry_run:
        import tempfile

        out, args.epochs = Path(tempfile.mkdtemp(prefix="char-lm-dry-")), 2
    for row in args.row or list(ROWS):
        record = run_row(row, data_dir=args.data_dir, out=out, epochs=args.epochs, threads=args.threads)
        print(f"{row}: perplexity {record['final_ppl']:.3f} (book {record['book_ppl']}), "
              f"{record['train_tokens_per_s']:,.0f} tokens/s, {record['wall_s']:.0f}s; "
              f"{record['generated'][PREFIXES[0]]!r}", flush=True)  # fmt: skip
    if args.dry_run:
        print(report(out))


if __name__ == "__main__":
    main()
