"""``divekit check FILE.py:NAME --as CONCEPT``: a learner's own code against divekit's reference."""

from __future__ import annotations

import argparse
import json
import re

from divekit.errors import ConfigError, DivekitError

SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check",
        help="check your own corr2d, BatchNorm, RNN, attention... against divekit's reference",
        description="Load NAME from your file in a child process (with time and memory limits) and test it "
        "against divekit's reference for CONCEPT on seeded random examples and edge cases. A failure shows "
        "the smallest failing input, the expected and actual values, and a hint for a known mistake. "
        "Exit status: 0 all properties pass, 1 one fails (or a limit stopped it), 2 the file cannot be "
        "loaded or NAME does not have the expected signature.",
    )
    p.add_argument("spec", nargs="?", metavar="FILE.py:NAME", help="your file and the function or class in it")
    p.add_argument("--as", dest="concept", metavar="CONCEPT", help="the concept NAME implements, e.g. corr2d "
                   "(default: inferred from NAME; see --list)")  # fmt: skip
    p.add_argument("--list", action="store_true", help="list the concepts with the signature each expects")
    p.add_argument("--json", action="store_true", help="print the report as JSON (for grading many submissions)")
    p.add_argument("--map", action="append", default=[], metavar="YOURS=REFERENCE",
                   help="take your parameter YOURS from the reference's REFERENCE (add .T to transpose), "
                   "when the names and the order differ, e.g. --map W=weight.T (repeatable)")  # fmt: skip
    p.add_argument("--examples", type=int, default=None, help="random examples per property (default 40)")
    p.add_argument("--seed", type=int, default=0, help="hypothesis seed: the same seed shows the same examples")
    p.add_argument("--time-limit", type=float, default=None, help="seconds for the whole check (default 60)")
    p.add_argument("--memory-limit", default=None, help="memory your code may allocate, e.g. 512M or 2G (default 2G)")
    p.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    if args.list:
        return _print_list(as_json=args.json)
    if not args.spec:
        raise ConfigError("give FILE.py:NAME to check (or --list to see the concepts)")
    try:
        report = _check(args)
    except DivekitError as err:
        if not args.json:
            raise
        print(json.dumps({"status": "error", "exit_code": err.exit_code, "message": str(err)}, ensure_ascii=False))
        return err.exit_code
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if args.json else report)
    return report.exit_code


def _check(args: argparse.Namespace):
    from divekit.check import DEFAULT_EXAMPLES, DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT, check

    examples = DEFAULT_EXAMPLES if args.examples is None else args.examples
    if examples < 1:
        raise ConfigError(f"--examples must be at least 1, got {examples}")
    memory = DEFAULT_MEMORY_LIMIT if args.memory_limit is None else parse_bytes(args.memory_limit)
    return check(args.spec, args.concept, mapping=_mapping(args.map), max_examples=examples, seed=args.seed,
                 time_limit=DEFAULT_TIME_LIMIT if args.time_limit is None else args.time_limit,
                 memory_limit=memory)  # fmt: skip


def _mapping(items: list[str]) -> dict[str, str] | None:
    mapping = {}
    for item in items:
        yours, equals, reference = item.partition("=")
        if not equals or not yours.strip() or not reference.strip():
            raise ConfigError(f"--map expects YOURS=REFERENCE, e.g. --map W=weight.T; got {item!r}")
        mapping[yours.strip()] = reference.strip()
    return mapping or None


def parse_bytes(text: str) -> int:
    """``"512M"`` -> bytes (K, M, G are powers of 1024; a plain number is bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--memory-limit expects a size such as 512M or 2G, got {text!r}")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2)])


def _print_list(*, as_json: bool) -> int:
    from divekit.check import concepts

    found = concepts()
    if as_json:
        rows = [{"concept": c.name, "section": c.section, "title": c.title, "signatures": c.signatures}
                for c in found]  # fmt: skip
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for concept in found:
        print(f"{concept.name}  §{concept.section} {concept.title}")
        for index, signature in enumerate(concept.signatures):
            print(f"    {'or ' if index else ''}{signature}")
    return 0
