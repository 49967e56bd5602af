"""The ``divekit`` command.

Each command group lives in its own module with a ``register(subparsers)``
function; :func:`main` assembles them and turns a :class:`DivekitError` into
one line on stderr and the error's exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from divekit import __version__
from divekit.cli.common import as_flags
from divekit.errors import DivekitError

COMMAND_MODULES = (
    "divekit.cli.train", "divekit.cli.info", "divekit.cli.summary", "divekit.cli.sequence", "divekit.cli.translate",
    "divekit.cli.demos",
    "divekit.cli.lr_find",
    "divekit.cli.interpret",
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the whole usage block) and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = Parser(
        prog="divekit",
        description="Train, evaluate and explore the models of Dive into Deep Learning.",
    )
    parser.add_argument("--version", action="version", version=f"divekit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except DivekitError as err:
        print(f"divekit: error: {as_flags(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("divekit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
