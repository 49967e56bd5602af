"""Import one object from a learner's Python file, named ``path/to/file.py:NAME``.

The file is read once; those exact bytes are hashed (SHA-256) and executed,
so what ran is what was hashed. It runs as a fresh module named after its
path and hash, with its folder on ``sys.path`` while it imports (so sibling
imports work). Every failure is one line: a missing file, a syntax error, an
exception raised while importing, a missing name.
"""

from __future__ import annotations

import hashlib
import stat
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divekit.errors import ConfigError, closest

MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class UserObject:
    """An object imported from a user's file, with where it came from."""

    obj: Any
    path: Path
    name: str
    sha256: str


def parse_spec(spec: str) -> tuple[Path, str]:
    """``"dir/file.py:NAME"`` -> ``(Path("dir/file.py"), "NAME")``."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ConfigError(f"{spec!r} is not of the form path/to/file.py:NAME (NAME a class or function in the file)")
    return Path(path).expanduser(), name


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(read_source(Path(path))).hexdigest()


def read_source(path: Path) -> bytes:
    """The bytes of a regular ``.py`` file of bounded size; one line for anything else."""
    if path.suffix != ".py":
        raise ConfigError(f"{path} is not a Python file (.py)")
    try:
        info = path.stat()
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such file") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror or err})") from err
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{path} is {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a model file")
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror or err})") from err


def load_object(spec: str | None = None, *, path: str | Path | None = None, name: str | None = None,
                expected_sha256: str | None = None) -> UserObject:  # fmt: skip
    """Import ``NAME`` from the file (``spec`` or ``path`` and ``name``); refuse a file whose hash differs."""
    if spec is not None:
        path, name = parse_spec(spec)
    if path is None or name is None:
        raise ConfigError("name the object as path/to/file.py:NAME")
    path = Path(path).expanduser().resolve()
    source = read_source(path)
    digest = hashlib.sha256(source).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise ConfigError(f"{path} has changed since the run was trained (SHA-256 {digest[:12]}..., the run "
                          f"recorded {expected_sha256[:12]}...); nothing was executed")  # fmt: skip
    module = _execute(source, path, digest)
    if not hasattr(module, name):
        defined = [k for k in vars(module) if not k.startswith("_")]
        close = closest(name, defined)
        hint = f"; did you mean {close!r}?" if close else ""
        raise ConfigError(f"{path} defines no {name!r}{hint} (it defines: {', '.join(defined) or 'nothing'})")
    return UserObject(getattr(module, name), path, name, digest)


def _execute(source: bytes, path: Path, digest: str) -> types.ModuleType:
    module_name = f"divekit_user_{path.stem}_{digest[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as err:
        raise ConfigError(f"{path}:{err.lineno}: syntax error: {err.msg}") from None
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent))
    try:
        exec(code, module.__dict__)
    except BaseException as err:
        del sys.modules[module_name]
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        line = next((f.lineno for f in reversed(traceback.extract_tb(err.__traceback__)) if f.filename == str(path)), "?")
        raise ConfigError(f"importing {path} raised {type(err).__name__}: {err} ({path.name}:{line})") from None
    finally:
        if sys.path and sys.path[0] == str(path.parent):
            sys.path.pop(0)
    return module
