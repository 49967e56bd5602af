"""``divekit interpret``: look at what a trained run learnt (figures and tables in a folder)."""

from __future__ import annotations

import argparse

from divekit.cli.common import add_model_file
from divekit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("interpret", help="figures and tables that explain a trained run",
                              description="A classifier: a grid of predictions, the top losses, the confusion matrix "
                                          "and per-class accuracy (PNGs) and every prediction (CSV). A language "
                                          "model: continuations at several temperatures. A translation model: "
                                          "attention maps and translations of held-out or given sentences.")  # fmt: skip
    p.add_argument("run_dir")
    p.add_argument("--out", required=True, help="folder for the PNG and CSV files")
    p.add_argument("--split", choices=("test", "val"), default="test", help="classifiers: which held-out split")
    p.add_argument("--prefix", action="append", metavar="TEXT", help="language models: text to continue (repeatable)")
    p.add_argument("--temperatures", default="0,0.6,1", metavar="T,T,...",
                   help="language models: sampling temperatures (0: greedy)")  # fmt: skip
    p.add_argument("--length", type=int, default=60, metavar="N", help="language models: tokens to generate")
    p.add_argument("--sentence", action="append", metavar="TEXT",
                   help="translation: a source sentence to draw (repeatable; default: the first --count held out)")  # fmt: skip
    p.add_argument("--count", type=int, default=3, metavar="N", help="translation: held-out sentences to draw")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", help="folder holding the data set's files, if it moved")
    add_model_file(p)
    p.set_defaults(handler=run_interpret)


def _temperatures(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"--temperatures must be numbers >= 0 separated by commas, e.g. 0,0.6,1; got {text!r}")
    return values


def run_interpret(args: argparse.Namespace) -> int:
    from divekit.inference.interpret import interpret_run

    if args.count < 1:
        raise ConfigError(f"--count must be at least 1, got {args.count}")
    paths = interpret_run(args.run_dir, args.out, split=args.split, which=args.checkpoint, device=args.device,
                          data_dir=args.data_dir, model_file=args.model_file, prefixes=args.prefix or ["the"],
                          temperatures=_temperatures(args.temperatures), length=args.length,
                          sentences=args.sentence or [], count=args.count)  # fmt: skip
    for path in paths:
        print(path)
    return 0
