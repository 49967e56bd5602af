"""The book's tables at the book's full settings on one CUDA GPU, in one go; writes docs/results-gpu.md.

Sections (settings as data, shared with the CPU scripts):

- CNNs on Fashion-MNIST, 10 epochs each at the book's input size, learning
  rate and batch: LeNet, AlexNet (224), VGG-11/4 (224), NiN (224), LeNet-BN
  (scratch and nn.BatchNorm), ResNet-18 (96); bf16 autocast and channels-last.
- The character-level language models on The Time Machine (first 10,000
  tokens, batch 32, 35 steps, SGD, clip 1, 500 epochs).
- The three translation models on fra-eng (600 pairs, the book's settings),
  with the book's BLEU of its four sentences.

Usage::

    python benchmarks/gpu_book.py --fashion DIR --timemachine DIR --fra-eng DIR     # on a CUDA machine
    python benchmarks/gpu_book.py --fashion DIR --timemachine DIR --fra-eng DIR --dry-run   # CPU check, ~2 min
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from book_table import BOOK  # noqa: E402  (label -> model, resize, lr, batch, book accuracy)
from char_lm_table import ROWS as LM_ROWS  # noqa: E402  (row -> label, model, options, lr, book perplexity)
from translation_results import BOOK_SENTENCES  # noqa: E402
from divekit.io import atomic_write_json, atomic_write_text  # noqa: E402
from divekit.runs import RunConfig, resolve_config, train  # noqa: E402

CNN_ROWS = {"LeNet": ("lenet", 28, 0.9, 256, 0.779), **BOOK}  # the book's LeNet: sigmoid, lr 0.9, batch 256
TRANSLATION_MODELS = ("seq2seq", "seq2seq-attention", "transformer")
BOOK_TRANSLATION = {  # model -> (book loss, book BLEU of the four sentences)
    "seq2seq": (0.019, (1.000, 1.000, 0.658, 0.447)),
    "seq2seq-attention": (0.021, (1.000, 1.000, 0.658, 1.000)),
    "transformer": (0.030, (1.000, 1.000, 1.000, 1.000)),
}


def quiet(message: str) -> None:
    pass


def cnn_config(label: str, args: argparse.Namespace) -> RunConfig:
    model, size, lr, batch, _ = CNN_ROWS[label]
    overrides = {"data.data_dir": args.fashion, "task.options.resize": size, "optim.lr": lr, "data.batch_size": batch,
                 "optim.optimizer": "sgd", "model.init": "xavier", "train.epochs": 10, "train.device": args.device,
                 "train.precision": args.precision, "train.channels_last": args.device != "cpu",
                 "train.compile": args.compile, "train.progress": False}  # fmt: skip
    if args.dry_run:
        overrides |= {"task.options.resize": min(size, 67), "task.options.train_subset": 512, "train.epochs": 1}
    return resolve_config(model, data="fashion-mnist", overrides=overrides)


def cnn_row(label: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    model, _, lr, batch, book = CNN_ROWS[label]
    config = cnn_config(label, args)
    result = train(config, out_dir=out / model, log=quiet)
    final = result.final
    return {"label": label, "size": config.task.options["resize"], "lr": lr, "batch": batch, "book": book,
            "test_acc": final["test_acc"], "train_acc": final["train_acc"], "epochs": final["epoch"],
            "images_per_s": final["train_examples_per_s"],
            "seconds": sum(r["epoch_time_s"] for r in result.history)}  # fmt: skip


def lm_config(row: str, args: argparse.Namespace) -> RunConfig:
    _, model, options, lr, _ = LM_ROWS[row]
    overrides = {"data.data_dir": args.timemachine, "task.options.max_tokens": 10_000, "data.batch_size": 32,
                 "task.options.num_steps": 35, "task.options.sampling": "sequential", "optim.optimizer": "sgd", "optim.lr": lr,
                 "optim.clip_grad": 1.0, "train.epochs": 2 if args.dry_run else 500, "train.device": args.device,
                 "train.progress": False, **{f"model.options.{k}": v for k, v in options.items()}}  # fmt: skip
    return resolve_config(model, data="timemachine", overrides=overrides)


def lm_row(row: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    label, _, options, lr, book = LM_ROWS[row]
    result = train(lm_config(row, args), out_dir=out / row, log=quiet)
    final = result.final
    return {"label": label, "hidden": options["num_hiddens"], "lr": lr, "book": book, "ppl": final["train_ppl"],
            "tokens_per_s": final["train_tokens_per_s"], "seconds": sum(r["epoch_time_s"] for r in result.history)}


def translation_config(model: str, args: argparse.Namespace) -> RunConfig:
    overrides = {"data.data_dir": args.fra_eng, "train.device": args.device, "train.progress": False}
    if args.dry_run:
        overrides |= {"train.epochs": 2, "task.options.num_examples": 200, "task.options.num_test": 20}
    return resolve_config(model, data="fra-eng", overrides=overrides)


def translation_row(model: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from divekit.inference.translate import Translator

    result = train(translation_config(model, args), out_dir=out / model, log=quiet)
    translations = Translator.from_run(out / model, which="last", device=args.device).translate_batch(
        list(BOOK_SENTENCES))  # fmt: skip
    final = result.final
    return {"model": model, "epochs": final["epoch"], "loss": final["train_loss"],
            "tokens_per_s": final["train_tokens_per_s"], "book": BOOK_TRANSLATION[model],
            "bleu": [t.bleu(BOOK_SENTENCES[t.source]) for t in translations],
            "translations": [t.text for t in translations],
            "seconds": sum(r["epoch_time_s"] for r in result.history)}  # fmt: skip


SECTIONS = (("cnn", CNN_ROWS, cnn_config, cnn_row), ("lm", LM_ROWS, lm_config, lm_row),
            ("translation", TRANSLATION_MODELS, translation_config, translation_row))  # fmt: skip


def row_configs(args: argparse.Namespace) -> dict[str, RunConfig]:
    """Every row's run config, resolved and checked (unknown keys and bad values raise), without training."""
    return {f"{section}/{row}": config(row, args) for section, rows, config, _ in SECTIONS for row in rows}


def markdown(results: dict[str, list[dict[str, Any]]], header: str) -> str:
    lines = [header, "", "### CNNs on Fashion-MNIST (10 epochs)", "",
             "| model | input | lr | batch | test acc | book | train acc | images/s (steps) | time |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["cnn"]:
        book = f"{r['book']:.3f}" if r["book"] is not None else "-"
        lines.append(f"| {r['label']} | {r['size']} | {r['lr']} | {r['batch']} | {r['test_acc']:.3f} | {book} | "
                     f"{r['train_acc']:.3f} | {r['images_per_s']:,.0f} | {r['seconds']:.0f}s |")  # fmt: skip
    lines += ["", "### Character-level language models (500 epochs)", "",
              "| model | hidden | lr | perplexity | book | tokens/s (steps) | time |", "|---|---|---|---|---|---|---|"]
    for r in results["lm"]:
        lines.append(f"| {r['label']} | {r['hidden']} | {r['lr']:g} | {r['ppl']:.3f} | {r['book']:.1f} | "
                     f"{r['tokens_per_s']:,.0f} | {r['seconds']:.0f}s |")  # fmt: skip
    lines += ["", "### Translation, fra-eng, 600 pairs", "",
              "| model | epochs | loss (token mean) | loss / num_steps (the book's scale) | book loss | "
              "BLEU go . / i lost . / he's calm . / i'm home . | book BLEU | tokens/s | time |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["translation"]:
        ours = " / ".join(f"{b:.3f}" for b in r["bleu"])
        book = " / ".join(f"{b:.3f}" for b in r["book"][1])
        lines.append(f"| {r['model']} | {r['epochs']} | {r['loss']:.3f} | {r['loss'] / 10:.4f} | {r['book'][0]} | {ours} | {book} | "
                     f"{r['tokens_per_s']:,.0f} | {r['seconds']:.0f}s |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion", required=True, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--timemachine", required=True, help="folder with timemachine.txt")
    parser.add_argument("--fra-eng", required=True, help="folder with fra.txt")
    parser.add_argument("--out", default="runs/gpu-book")
    parser.add_argument("--doc", default="docs/results-gpu.md")
    parser.add_argument("--precision", default="bf16", choices=("32", "bf16", "16"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the CNNs")
    parser.add_argument("--dry-run", action="store_true", help="tiny settings on the CPU, to check the script")
    args = parser.parse_args()
    args.device = "cpu" if args.dry_run else "cuda"
    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU machine, or use --dry-run")
    out = Path(args.out) / ("dry-run" if args.dry_run else "")
    started = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {"cnn": [], "lm": [], "translation": []}
    row_configs(args)  # every row's settings checked before hours of training
    for section, rows, _, run in SECTIONS:
        for row in rows:
            results[section].append(run(row, args, out / section))
            print(json.dumps(results[section][-1]), flush=True)
            atomic_write_json(out / "results.json", results)
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor() or "CPU"
    header = (f"# The book's tables on one GPU\n\nMeasured on {device}, torch {torch.__version__}, "
              f"CNNs in {args.precision} autocast{' with torch.compile' if args.compile else ''}, "
              f"total {(time.perf_counter() - started) / 60:.1f} min, with:\n\n```bash\n"
              f"python benchmarks/gpu_book.py {' '.join(sys.argv[1:])}\n```")  # fmt: skip
    text = markdown(results, header)
    atomic_write_text(out / "results-gpu.md" if args.dry_run else Path(args.doc), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
