"""Train the three translation models and report the numbers in docs/results.md.

Experiments:

- ``book``: fra-eng, the first 600 pairs, the book's settings (batch 64,
  num_steps 10, Adam lr 0.005, dropout 0.1, 300/250/200 epochs); final loss,
  tokens/s and the book's BLEU (k = 2) of its four sentences, translated by
  the final model.
- ``heldout``: fra-eng with 20,000 training pairs; sacrebleu corpus BLEU on
  the held-out pairs that follow them (no shared source sentence).
- ``numbers``: numbers-fr (9,000 training numbers, 1,000 held out);
  ``numbers-1k``: the same with only 1,000 training numbers.

Usage (from the repository root, one experiment at a time under the CPU lock):

    PYTHONPATH=src flock /work/cpu.lock python benchmarks/translation_results.py book \
        --data-dir /work/shared/data/fra-eng --out runs/results

``--dry-run`` runs the same code end to end with tiny settings; ``--beam 1 4``
scores the runs an experiment already trained with greedy decoding and beam search.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from divekit.runs import resolve_config, train
from divekit.inference.translate import Translator

BOOK_SENTENCES = {"go .": "va !", "i lost .": "j'ai perdu .", "he's calm .": "il est calme .",
                  "i'm home .": "je suis chez moi ."}  # fmt: skip

# Held-out fra-eng: one larger size for all three models, the same schedule for all.
HELDOUT_COMMON = {
    "task.options.num_examples": 20_000, "task.options.num_steps": 12, "data.batch_size": 128, "train.epochs": 15,
    "optim.lr": 0.002, "optim.schedule": "cosine", "optim.warmup_epochs": 1.0,
}  # fmt: skip
HELDOUT_MODELS = {
    "seq2seq": {"embed_size": 128, "num_hiddens": 128, "dropout": 0.2},
    "seq2seq-attention": {"embed_size": 128, "num_hiddens": 128, "dropout": 0.2},
    "transformer": {"num_hiddens": 128, "ffn_num_hiddens": 256, "num_heads": 4, "dropout": 0.2},
}

EXPERIMENTS: dict[str, dict[str, Any]] = {
    "book": {"data": "fra-eng", "common": {}, "models": {m: {} for m in HELDOUT_MODELS}},
    "heldout": {"data": "fra-eng", "common": HELDOUT_COMMON, "models": HELDOUT_MODELS},
    "numbers": {"data": "numbers-fr", "common": {}, "models": {m: {} for m in HELDOUT_MODELS}},
    # The same with only 1,000 training numbers: composing unseen numbers becomes the hard part.
    "numbers-1k": {"data": "numbers-fr", "common": {"task.options.num_examples": 1000, "train.epochs": 100},
                   "models": {m: {} for m in HELDOUT_MODELS}},
}


def run_one(experiment: str, model: str, *, data_dir: str | None, out: Path, dry_run: bool) -> dict[str, Any]:
    spec = EXPERIMENTS[experiment]
    overrides = {**spec["common"], "train.progress": False, "train.device": "cpu"}
    overrides |= {f"model.options.{k}": v for k, v in spec["models"][model].items()}
    if data_dir:
        overrides["data.data_dir"] = data_dir
    if dry_run:
        overrides |= {"train.epochs": 2, "task.options.num_examples": 200, "task.options.num_test": 20}
    config = resolve_config(model, data=spec["data"], overrides=overrides)
    folder = out / f"{experiment}-{model}"
    started = time.perf_counter()
    result = train(config, out_dir=folder, log=lambda line: None)
    final = result.final
    row = {"model": model, "epochs": final["epoch"], "train_loss": final["train_loss"],
           "test_loss": final["test_loss"], "test_bleu_final": final.get("test_bleu"),
           "test_bleu_at_best_val": (result.best or {}).get("test_bleu"), "best_epoch": (result.best or {}).get("epoch"),
           "tokens_per_s": final["train_tokens_per_s"], "wall_s": time.perf_counter() - started,
           "config": config.to_dict()}  # fmt: skip
    if experiment == "book":
        translator = Translator.from_run(folder, which="last")
        outputs = translator.translate_batch(list(BOOK_SENTENCES))
        row["book"] = {t.source: {"translation": t.text, "bleu": t.bleu(BOOK_SENTENCES[t.source])} for t in outputs}
    return row


def beam_bleu(folder: Path, *, beam_sizes: list[int], data_dir: str | None) -> dict[int, float]:
    """Corpus BLEU of the run's best checkpoint on its held-out split, decoding with each beam size."""
    from divekit.data import load_dataset
    from divekit.data.translation import detokenize_nmt
    from divekit.inference.bleu import corpus_bleu
    from divekit.runs import read_run_config

    config = read_run_config(folder)
    data = load_dataset(config.data.name, data_dir=data_dir or config.data.data_dir)
    _, test = data.split(num_examples=config.task.options.get("num_examples"), num_test=config.task.options.get("num_test"))
    references: dict[str, list[str]] = {}
    for source, target in test:
        references.setdefault(source, []).append(detokenize_nmt(target))
    translator = Translator.from_run(folder)
    scores = {}
    for k in beam_sizes:
        outputs = translator.translate(list(references), beam_size=k, batch_size=256)
        scores[k] = corpus_bleu([detokenize_nmt(t.text) for t in outputs], list(references.values()))
    return scores


def markdown(experiment: str, rows: list[dict[str, Any]]) -> str:
    if experiment == "book":
        lines = ["| model | epochs | final train loss (valid-token mean) | same /10 (the book's scale) | tokens/s | "
                 "BLEU go . / i lost . / he's calm . / i'm home . | translations |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            bleu = " / ".join(f"{v['bleu']:.3f}" for v in r["book"].values())
            words = "; ".join(v["translation"] for v in r["book"].values())
            lines.append(f"| {r['model']} | {r['epochs']} | {r['train_loss']:.3f} | {r['train_loss'] / 10:.4f} | "
                         f"{r['tokens_per_s']:,.0f} | {bleu} | {words} |")  # fmt: skip
        return "\n".join(lines)
    lines = ["| model | epochs | train loss | test loss | test BLEU (final) | test BLEU (best epoch) | tokens/s |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['model']} | {r['epochs']} | {r['train_loss']:.3f} | {r['test_loss']:.3f} | "
                     f"{r['test_bleu_final']:.2f} | {r['test_bleu_at_best_val'] or float('nan'):.2f} (epoch {r['best_epoch']}) | "
                     f"{r['tokens_per_s']:,.0f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--data-dir", help="folder holding fra.txt (fra-eng experiments)")
    parser.add_argument("--out", default="runs/results", help="parent folder of the run folders")
    parser.add_argument("--models", nargs="+", default=list(HELDOUT_MODELS), choices=list(HELDOUT_MODELS))
    parser.add_argument("--dry-run", action="store_true", help="tiny settings, to check the script end to end")
    parser.add_argument("--beam", type=int, nargs="+", metavar="K",
                        help="instead of training, score the experiment's existing runs with these beam sizes")  # fmt: skip
    args = parser.parse_args()
    out = Path(args.out)
    if args.beam:
        print("| model | " + " | ".join(f"BLEU, beam {k}" for k in args.beam) + " |")
        print("|---|" + "---|" * len(args.beam))
        for model in args.models:
            scores = beam_bleu(out / f"{args.experiment}-{model}", beam_sizes=args.beam, data_dir=args.data_dir)
            print(f"| {model} | " + " | ".join(f"{v:.2f}" for v in scores.values()) + " |", flush=True)
        return
    rows = []
    for model in args.models:
        rows.append(run_one(args.experiment, model, data_dir=args.data_dir, out=out, dry_run=args.dry_run))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "config"}), flush=True)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")  # fmt: skip
    print(markdown(args.experiment, rows))
    (out / f"{args.experiment}{'-dry' if args.dry_run else ''}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
