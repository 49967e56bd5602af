"""The ``divekit`` command.

Each command group lives in its own module with a ``register(subparsers)``
function; :func:`main` assembles them and turns a :class:`DivekitError` into
one line on stderr and the error's exit code, never a traceback.

Anything else that goes wrong (a bug, or memory running out) is caught by one
guard: one line says what failed and where the full traceback was saved (the
command's run folder when it has one, else a temporary file), and the exit
code is :data:`UNEXPECTED_EXIT`. ``DIVEKIT_TRACEBACK=1`` also prints it.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from typing import NoReturn
from pathlib import Path

from divekit import __version__
from divekit.cli.common import as_flags
from divekit.errors import DivekitError

TRACEBACK_ENV = "DIVEKIT_TRACEBACK"
UNEXPECTED_EXIT = 70  # EX_SOFTWARE of sysexits.h: an internal software error

COMMAND_MODULES = (
    "divekit.cli.train", "divekit.cli.info", "divekit.cli.summary", "divekit.cli.sequence", "divekit.cli.translate",
    "divekit.cli.demos", "divekit.cli.check", "divekit.cli.tracking", "divekit.cli.serve", "divekit.cli.lr_find",
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
    except Exception as err:  # the guard for the unexpected: one line, the traceback kept in a file
        return report_unexpected(err, args)


def run() -> NoReturn:
    """The ``divekit`` program: :func:`main`, then exit without a last sweep of the garbage collector.

    After a training run the interpreter holds a few hundred thousand objects (PyTorch's compiler stack,
    which its optimisers import, brings sympy); the collection Python makes at exit walked them all for
    1.2-1.5 s after the work was done. Freezing them first skips that walk; files and run folders are
    closed by then, and objects are still freed when the process ends.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


def report_unexpected(err: BaseException, args: argparse.Namespace) -> int:
    """Print one line for an unexpected exception, save its traceback, return :data:`UNEXPECTED_EXIT`."""
    text = traceback.format_exc()
    if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
        print(text, end="", file=sys.stderr)
    saved = save_traceback(text, run_folder(args))
    where = f"the full traceback is in {saved}" if isinstance(saved, Path) else \
        f"the traceback could not be saved ({saved})"  # fmt: skip
    print(f"divekit: error: {describe_unexpected(err, args)}; {where}; set {TRACEBACK_ENV}=1 to see it here",
          file=sys.stderr)  # fmt: skip
    return UNEXPECTED_EXIT


def describe_unexpected(err: BaseException, args: argparse.Namespace) -> str:
    """What failed, in a few words on one line."""
    command = " ".join(str(part) for part in (args.command, getattr(args, "data_command", None)) if part)
    if isinstance(err, MemoryError):
        return f"ran out of memory in `divekit {command}`; use smaller inputs or batches"
    detail = (str(err).strip().splitlines() or [""])[0][:200]
    return (f"unexpected {type(err).__name__} in `divekit {command}`" + (f" ({detail})" if detail else "") +
            ", a bug in divekit: please report it with the traceback")  # fmt: skip


def run_folder(args: argparse.Namespace) -> Path | None:
    """The existing run folder a command works on: ``train --out``, or the RUN_DIR argument of the others."""
    folder = getattr(args, "run_dir", None) or (getattr(args, "out", None) if args.command == "train" else None)
    return Path(folder) if folder and Path(folder).is_dir() else None


def save_traceback(text: str, folder: Path | None) -> Path | str:
    """Write ``text`` into ``folder`` (else a temporary file); return its path, or why it could not be written."""
    from divekit.io import DiskWriteError, atomic_write_text

    name = f"traceback-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    if folder is not None:
        try:
            atomic_write_text(folder / f"{name}.txt", text)
            return folder / f"{name}.txt"
        except DiskWriteError:
            pass  # a read-only run folder: a temporary file will do
    try:
        fd, path = tempfile.mkstemp(prefix=f"divekit-{name}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return Path(path)
    except OSError as write_error:
        return write_error.strerror or str(write_error)
