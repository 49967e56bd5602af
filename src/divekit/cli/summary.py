"""``divekit summary MODEL``: the layer table of a registered model."""

from __future__ import annotations

import argparse
import json
from typing import Any

from divekit.cli.info import parse_size
from divekit.cli.common import split_assignment
from divekit.schema import parse_value
from divekit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "summary",
        help="print a model's layers: output shapes, parameters, multiply-adds, size",
        description="Push one example through a registered model and tabulate every layer. "
        "The model is built on PyTorch's meta device: nothing is allocated or computed.",
    )
    p.add_argument("model", help="model name (see `divekit models`)")
    p.add_argument("--input-size", help="shape of one example, e.g. 1,28,28 (default: the model's own)")
    p.add_argument("--num-classes", type=int, help="outputs of a classifier (default: the builder's)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model builder option, e.g. --option layout=imagenet (repeatable)")  # fmt: skip
    p.add_argument("--depth", type=int, default=3, help="deepest nesting level to show (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(handler=run_summary)


def model_summary(name: str, *, input_size: tuple[int, ...] | None = None, num_classes: int | None = None,
                  options: dict[str, Any] | None = None, depth: int = 3) -> Any:  # fmt: skip
    """Summarise registered model ``name`` for ``input_size`` (default: the registered one)."""
    import torch

    from divekit.models import create_model, get_model_entry
    from divekit.nn.summary import summary

    entry = get_model_entry(name)
    size = input_size or entry.input_size
    if size is None:
        raise ConfigError(f"model {name!r} has no registered input size; pass --input-size")
    accepted = entry.options()
    facts = {"num_classes": num_classes}
    if entry.task == "classification" and len(size) == 3:
        facts.update({"in_channels": size[0], "image_size": size[-1]})
    built = {k: v for k, v in facts.items() if v is not None and k in accepted} | dict(options or {})
    with torch.device("meta"):
        model = create_model(name, **built)
    dtype = torch.float32 if entry.task in ("classification", "regression") else torch.long
    try:
        return summary(model, size, depth=depth, dtype=dtype)
    except (RuntimeError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"model {name!r} cannot take an input of size {','.join(map(str, size))}: {first}") from err


def run_summary(args: argparse.Namespace) -> int:
    if args.depth < 0:
        raise ConfigError(f"--depth must be >= 0, got {args.depth}")
    options = {}
    for item in args.option:
        key, value = split_assignment(item, "--option")
        options[key] = parse_value(value)
    size = parse_size(args.input_size) if args.input_size else None
    result = model_summary(args.model, input_size=size, num_classes=args.num_classes, options=options, depth=args.depth)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result)
    return 0
