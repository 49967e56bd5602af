"""``divekit translate`` and ``attention``: translation with a trained seq2seq run, and where its attention goes."""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from divekit.cli.common import add_model_file
from divekit.errors import ConfigError, DataError

STABLE_CORPUS_SEGMENTS = 100  # corpus BLEU over fewer sentences swings with a single n-gram


def register(subparsers: argparse._SubParsersAction) -> None:
    t = subparsers.add_parser("translate", help="translate sentences with a trained seq2seq run",
                              description="Translate sentences with a trained seq2seq run; with references, "
                                          "print the book's BLEU of each and sacrebleu's corpus BLEU.")  # fmt: skip
    t.add_argument("run_dir")
    t.add_argument("sentences", nargs="*", metavar="SENTENCE", help="source sentences, e.g. \"go .\"")
    t.add_argument("--ref", action="append", default=[], metavar="TEXT",
                   help="reference translation of the SENTENCE in the same position (repeat once per sentence)")  # fmt: skip
    t.add_argument("--input", metavar="FILE", help="read sentences from FILE ('-': stdin), one per line, "
                   "optionally followed by a TAB and a reference (the fra.txt format)")  # fmt: skip
    t.add_argument("--beam-size", type=int, default=1, help="beam search with K beams (1: greedy)")
    t.add_argument("--max-len", type=int, help="longest output in tokens (default: the run's num_steps)")
    t.add_argument("--batch-size", type=int, default=64, help="sentences translated together")
    _run_options(t)
    t.add_argument("--json", action="store_true", help="print one JSON object per sentence")
    t.set_defaults(handler=run_translate)

    a = subparsers.add_parser("attention", help="draw a run's attention weights for one sentence")
    a.add_argument("run_dir")
    a.add_argument("sentence")
    a.add_argument("--out", help="folder for the PNGs (default: RUN_DIR/attention/<sentence>)")
    a.add_argument("--max-len", type=int, help="longest output in tokens (default: the run's num_steps)")
    _run_options(a)
    a.set_defaults(handler=run_attention)


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--device", default="cpu")
    add_model_file(parser)


def _read_lines(path: str) -> Iterator[tuple[str, str | None]]:
    """``(source, reference or None)`` per non-blank line, read lazily; the file is opened (and checked) at the call."""
    from divekit.io import read_lines

    lines = read_lines(path, what="input file", error=DataError)
    return ((c[0], c[1] if len(c) > 1 and c[1].strip() else None) for c in (line.split("\t") for line in lines)
            if c[0].strip())  # fmt: skip


def _inputs(args: argparse.Namespace) -> Iterator[tuple[str, str | None]]:
    if args.input and args.sentences:
        raise ConfigError("give sentences on the command line or --input FILE, not both")
    if args.input:
        if args.ref:
            raise ConfigError("--ref goes with sentences on the command line; in --input FILE put each reference "
                              "after a TAB")  # fmt: skip
        return _read_lines(args.input)
    if not args.sentences:
        raise ConfigError('nothing to translate: give sentences, e.g. divekit translate RUN_DIR "go ." "i lost ."')
    if args.ref and len(args.ref) != len(args.sentences):
        raise ConfigError(f"{len(args.ref)} --ref for {len(args.sentences)} sentences: give one reference per sentence")
    return iter(zip(args.sentences, args.ref or [None] * len(args.sentences)))


def run_translate(args: argparse.Namespace) -> int:
    from divekit.data.translation import detokenize_nmt, preprocess_nmt
    from divekit.inference.bleu import bleu_from_stats, bleu_stats
    from divekit.inference.translate import Translator

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    items = _inputs(args)
    translator = Translator.from_run(args.run_dir, which=args.checkpoint, device=args.device,
                                      model_file=args.model_file)
    stats: dict[str, float] = {}
    count = truncated = scored_count = 0
    while batch := list(itertools.islice(items, args.batch_size)):
        results = translator.translate_batch([s for s, _ in batch], beam_size=args.beam_size, max_len=args.max_len)
        scored = [(r, ref) for r, (_, ref) in zip(results, batch) if ref is not None]
        scored_count += len(scored)
        hypotheses = [detokenize_nmt(r.text) for r, _ in scored]
        for key, value in bleu_stats(hypotheses, [[detokenize_nmt(preprocess_nmt(ref))] for _, ref in scored]).items():
            stats[key] = stats.get(key, 0.0) + value
        for result, (_, ref) in zip(results, batch):
            _print_translation(result, ref, as_json=args.json)
        count += len(batch)
        truncated += sum(r.truncated for r in results)
    if truncated:
        print(f"note: {truncated} source(s) had more than {translator.num_steps - 1} words and were cut, as in "
              "training", file=sys.stderr)  # fmt: skip
    if stats.get("bleu_sys_len") and not args.json:
        print(corpus_bleu_line(bleu_from_stats(stats), scored_count))
    return 0


def corpus_bleu_line(bleu: float, segments: int) -> str:
    """The corpus BLEU line, with a warning when there are too few sentences for it to mean much."""
    line = f"corpus BLEU (sacrebleu) {bleu:.2f} over the {segments} sentence(s) with a reference"
    if segments < STABLE_CORPUS_SEGMENTS:
        line += (f"; unstable on fewer than ~{STABLE_CORPUS_SEGMENTS} sentences (one missing 4-gram makes it 0): "
                 "read the per-sentence book BLEU above")  # fmt: skip
    return line


def _print_translation(result, reference: str | None, *, as_json: bool) -> None:
    bleu = result.bleu(reference) if reference is not None else None
    if as_json:
        print(json.dumps({"source": result.source, "translation": result.text, "reference": reference,
                          "bleu": bleu}, ensure_ascii=False))  # fmt: skip
    else:
        print(f"{result.source} => {result.text}" + (f"  (bleu {bleu:.3f})" if bleu is not None else ""))


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")[:60] or "sentence"


def run_attention(args: argparse.Namespace) -> int:
    from divekit.plot_attention import save_attention_maps
    from divekit.inference.translate import Translator

    translator = Translator.from_run(args.run_dir, which=args.checkpoint, device=args.device,
                                      model_file=args.model_file)
    maps = translator.attention_maps(args.sentence, max_len=args.max_len)
    if not maps.encoder and not maps.cross:
        raise ConfigError(f"{args.run_dir} holds a model without attention; train seq2seq-attention or transformer")
    out = Path(args.out) if args.out else Path(args.run_dir) / "attention" / _slug(args.sentence)
    print(f"{' '.join(maps.source_tokens)} => {' '.join(maps.output_tokens)}")
    for path in save_attention_maps(maps, out):
        print(path)
    return 0
