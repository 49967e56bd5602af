"""``divekit ngrams``, ``generate`` and ``forecast``: language statistics, text generation, series forecasts."""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from divekit.cli.common import add_model_file
from divekit.errors import ConfigError, DataError

ORDER_NAMES = {1: "unigrams", 2: "bigrams", 3: "trigrams"}


def register(subparsers: argparse._SubParsersAction) -> None:
    n = subparsers.add_parser("ngrams", help="n-gram counts of a text and a Zipf plot (notes §6.3)",
                              description="Count the unigrams, bigrams and trigrams of a corpus.")  # fmt: skip
    n.add_argument("corpus", help="a text data set (timemachine, pydoc) or a UTF-8 text file")
    n.add_argument("--token", choices=("word", "char"), default="word")
    n.add_argument("--normalize", choices=("letters", "none"), default="letters",
                   help="letters: lowercase letters and spaces only, as the book reads text (default)")  # fmt: skip
    n.add_argument("--top", type=int, default=10, help="how many of each to print")
    n.add_argument("--orders", type=int, nargs="+", default=[1, 2, 3], metavar="N", help="n-gram orders")
    n.add_argument("--plot", metavar="PNG", help="write the log-log frequency plot here")
    n.add_argument("--data-dir")
    n.add_argument("--download", action="store_true")
    n.add_argument("--mirror")
    n.set_defaults(handler=run_ngrams)

    g = subparsers.add_parser("generate", help="continue text with a trained language model",
                              description="Warm the model up on each prefix, then predict tokens greedily or by "
                                          "sampling (--temperature, --top-k).")  # fmt: skip
    g.add_argument("run_dir")
    g.add_argument("--prefix", action="append", default=[], help="text to continue (repeatable)")
    g.add_argument("--prompts", metavar="FILE", help="a file with one prefix per line ('-': stdin), read lazily")
    g.add_argument("--length", type=int, default=50, help="tokens to generate per prefix")
    g.add_argument("--temperature", type=float, help="sample at this temperature (default: greedy)")
    g.add_argument("--top-k", type=int, help="sample among the k most probable tokens only")
    g.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    g.add_argument("--checkpoint", choices=("best", "last"), default="best")
    add_model_file(g)
    g.add_argument("--device", default="cpu")
    g.set_defaults(handler=run_generate)

    f = subparsers.add_parser("forecast", help="k-step-ahead predictions of a series model (notes §6.1)")
    f.add_argument("run_dir")
    f.add_argument("--steps", type=int, nargs="+", default=[1, 4, 16, 64], metavar="K")
    f.add_argument("--out", default="forecast.png", help="PNG file")
    f.add_argument("--checkpoint", choices=("best", "last"), default="best")
    add_model_file(f)
    f.set_defaults(handler=run_forecast)


# ------------------------------------------------------------------ ngrams
def load_text(name: str, *, data_dir: str | None = None, download: bool = False, mirror: str | None = None):
    """A registered text data set by name, or a text file by path."""
    from divekit.data import list_datasets, load_dataset
    from divekit.data.corpora import read_text_file
    from divekit.errors import unknown_name

    names = list_datasets("language-model")
    if name in names:
        return load_dataset(name, data_dir=data_dir, download=download, mirror=mirror)
    if Path(name).expanduser().exists():
        return read_text_file(name)
    raise unknown_name("corpus", name, names + ["<a UTF-8 text file>"])


def run_ngrams(args: argparse.Namespace) -> int:
    from divekit.data.ngrams import ngram_vocab
    from divekit.data.text import tokenize
    from divekit.plot import plot_zipf

    if args.top < 0 or any(n < 1 for n in args.orders):
        raise ConfigError("--top must be >= 0 and every order at least 1")
    corpus = load_text(args.corpus, data_dir=args.data_dir, download=args.download, mirror=args.mirror)
    tokens = [t for line in corpus.lines(args.normalize) for t in tokenize((line,), args.token)[0]]
    if not tokens:
        raise DataError(f"no tokens after cleaning: {corpus.source} holds no {args.token} tokens once cleaned "
                        f"(--normalize {args.normalize}); use a text with letters, or --normalize none")
    print(f"{corpus.name}: {len(tokens):,} {args.token} tokens")
    frequencies = {}
    for n in args.orders:
        vocab = ngram_vocab(tokens, n)
        frequencies[n] = [count for _, count in vocab.token_freqs]
        print(f"{ORDER_NAMES.get(n, f'{n}-grams')}: {len(vocab.token_freqs):,} distinct")
        shown = [(_show(g, args.token), c) for g, c in vocab.token_freqs[:args.top]]
        width = max((len(g) for g, _ in shown), default=0)
        for rank, (gram, count) in enumerate(shown, 1):
            print(f"  {rank:>3}  {gram:<{width}}  {count:>8,}")
    if args.plot:
        plot_zipf(frequencies, args.plot, title=f"{corpus.name} ({args.token} tokens)")
        print(f"plot: {args.plot}")
    return 0


def _show(gram: Any, token: str) -> str:
    parts = gram if isinstance(gram, tuple) else (gram,)
    return " ".join(repr(p) if token == "char" else p for p in parts)


# ---------------------------------------------------------------- generate
def _prompts(args: argparse.Namespace) -> Iterator[str]:
    """The --prefix texts, then the non-blank lines of --prompts; the file is opened (and checked) at the call."""
    from divekit.io import read_lines

    lines = read_lines(args.prompts, what="prompts file", error=ConfigError) if args.prompts else iter(())
    return itertools.chain(args.prefix, (line for line in lines if line.strip()))


def _check_generate_options(args: argparse.Namespace) -> float:
    """Every option checked before anything is loaded or printed; returns the temperature to use."""
    from divekit.inference.generate import check_sampling

    if not args.prefix and not args.prompts:
        raise ConfigError('give text to continue with --prefix "time traveller" or --prompts FILE')
    if args.length < 0:
        raise ConfigError(f"--length must be >= 0, got {args.length}")
    if not -(2**63) <= args.seed < 2**64:
        raise ConfigError(f"--seed must fit in 64 bits, got {args.seed}")
    temperature = args.temperature if args.temperature is not None else (1.0 if args.top_k else 0.0)
    check_sampling(temperature=temperature, top_k=args.top_k, names=("--temperature", "--top-k"))
    return temperature


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from divekit.inference.generate import TextGenerator

    temperature = _check_generate_options(args)
    prompts = _prompts(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generator = TextGenerator.from_run(args.run_dir, which=args.checkpoint, device=args.device,
                                           model_file=args.model_file)
    for warning in caught:
        print(f"divekit: warning: {warning.message}", file=sys.stderr)
    rng = torch.Generator().manual_seed(args.seed)
    live = sys.stdout.isatty()
    separator = "" if generator.token == "char" else " "
    for prefix in prompts:
        # stream() checks the prefix at the call, so a prefix that cannot be continued is not printed first
        pieces = generator.stream(prefix, length=args.length, temperature=temperature, top_k=args.top_k,
                                  generator=rng)  # fmt: skip
        sys.stdout.write(generator.join(generator.tokens(prefix)))
        for piece in pieces:
            sys.stdout.write(separator + piece)
            if live:
                sys.stdout.flush()
        sys.stdout.write("\n")
        sys.stdout.flush()
    return 0


# ---------------------------------------------------------------- forecast
def run_forecast(args: argparse.Namespace) -> int:
    from divekit.plot import plot_forecast
    from divekit.runs.build import build_source
    from divekit.runs.load import load_run
    from divekit.tasks.regression import forecast

    if not args.steps or min(args.steps) < 1:
        raise ConfigError("--steps must be positive integers, e.g. --steps 1 4 16 64")
    run = load_run(args.run_dir, which=args.checkpoint, model_file=args.model_file)
    if run.task != "regression":
        raise ConfigError(f"{args.run_dir} is a {run.task} run; `forecast` needs a series model")
    data = build_source(run.config).data  # the series as trained (a CSV file's column, standardised)
    result = forecast(run.model, data, tau=run.info["tau"], steps=args.steps)
    plot_forecast(result, args.out)
    print(f"{run.config.model.name} on {data.name} (tau={result.tau}): mean squared error of the predictions")
    for k, mse in result.errors.items():
        print(f"  {k:>4}-step ahead  {mse:.4f}")
    print(f"  multistep from t={result.multistep[0][0]:.0f} on  {result.multistep_error:.4f}")
    print(f"plot: {args.out}")
    return 0
