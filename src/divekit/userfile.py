"""Load one object from a learner's own Python file, given explicitly as ``path/file.py:NAME``.

Used by ``divekit check`` (a learner's ``corr2d``) and ``divekit train`` (a
learner's model). The rules keep what runs honest and the errors short:

- only an explicit regular ``.py`` file is read (never a folder, a device or a
  FIFO, never a file found by searching), and at most :data:`MAX_BYTES`;
- the bytes are read once, hashed, and those same bytes are compiled and run,
  so the SHA-256 reported is the SHA-256 of what ran; with ``expected_sha256``
  a file that changed is refused before any of it runs;
- the file runs as a fresh module, named uniquely per (path, hash), that sits
  in ``sys.modules`` (so dataclasses, pickling and ``typing`` work), with its
  folder on ``sys.path`` while it runs (so ``import my_helpers`` beside it works);
- every failure is one :class:`~divekit.errors.ConfigError` line: a missing
  file, ``file.py:LINE: message`` for a syntax error, the exception and line
  for a file that raises while importing, and the names it does define (with a
  did-you-mean) when ``NAME`` is not one of them.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divekit.errors import ConfigError, closest

MAX_BYTES = 10 * 1024 * 1024
SPEC_FORM = "FILE.py:NAME (e.g. my_cnn.py:corr2d)"


@dataclass(frozen=True)
class UserObject:
    """An object taken from a learner's file, with what identifies the code that made it."""

    obj: Any  # the attribute NAME of the imported file
    path: Path  # absolute, resolved path of the file
    name: str  # NAME
    sha256: str  # hex SHA-256 of the exact bytes that were executed


def parse_spec(spec: str) -> tuple[Path, str]:
    """Split ``"dir/file.py:NAME"`` into ``(Path("dir/file.py"), "NAME")``.

    The last colon separates the two, so a Windows drive letter stays in the path.
    """
    path, colon, name = str(spec).rpartition(":")
    if not colon or not path:
        raise ConfigError(f"expected {SPEC_FORM}, got {spec!r}")
    if not name:
        raise ConfigError(f"{spec!r} names no object after the colon; expected {SPEC_FORM}")
    if not name.isidentifier():
        raise ConfigError(f"{name!r} in {spec!r} is not a Python name; expected {SPEC_FORM}")
    return Path(path), name


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file at ``path`` (checked and read as :func:`load_object` reads it)."""
    return hashlib.sha256(_read_source(Path(path))).hexdigest()


def load_object(spec: str | None = None, *, path: str | Path | None = None, name: str | None = None,
                expected_sha256: str | None = None) -> UserObject:  # fmt: skip
    """Run a learner's file once and return its attribute ``NAME``.

    Args:
        spec: ``"path/file.py:NAME"``; or give ``path`` and ``name`` instead.
        path: the ``.py`` file.
        name: the attribute of the file to return (a function, class, object).
        expected_sha256: refuse to run the file unless its bytes hash to this.
    """
    path, name = _path_and_name(spec, path, name)
    source = _read_source(path)
    digest = hashlib.sha256(source).hexdigest()
    if expected_sha256 is not None and expected_sha256.lower() != digest:
        raise ConfigError(f"{path} is not the file that was checked: expected sha256 {expected_sha256}, "
                          f"found {digest}; nothing was run")  # fmt: skip
    resolved = path.resolve()
    module = _run_module(source, path, resolved, digest)
    if not hasattr(module, name):
        raise _missing_name(path, name, module)
    return UserObject(obj=getattr(module, name), path=resolved, name=name, sha256=digest)


def _path_and_name(spec: str | None, path: str | Path | None, name: str | None) -> tuple[Path, str]:
    if (spec is None) == (path is None and name is None):
        raise ConfigError(f"give either a spec {SPEC_FORM} or both path= and name=")
    if spec is not None:
        return parse_spec(spec)
    if path is None or not name:
        raise ConfigError("give both path= and name= (the file and the object in it)")
    if not name.isidentifier():
        raise ConfigError(f"{name!r} is not a Python name")
    return Path(path), name


def _read_source(path: Path) -> bytes:
    """The bytes of a regular ``.py`` file of at most :data:`MAX_BYTES`, read once."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    _require_python_file(path, info)
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the stat, opening it does not hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    with os.fdopen(fd, "rb") as handle:
        _require_python_file(path, os.fstat(handle.fileno()))  # what was opened, not what was stat'ed
        source = handle.read(MAX_BYTES + 1)
    if len(source) > MAX_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MB; give the Python file itself")
    return source


def _require_python_file(path: Path, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path} is a folder; give a .py file in it, e.g. {path / 'my_code.py'}:NAME")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path} is not a regular file (a device, FIFO or socket); give a .py file")
    if path.suffix != ".py":
        raise ConfigError(f"{path} is not a Python file; give a file ending in .py")
    if info.st_size > MAX_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MB; give the Python file itself")


def module_name(resolved: Path, digest: str) -> str:
    """A module name unique to this file's path and contents."""
    stem = re.sub(r"\W", "_", resolved.stem)
    tag = hashlib.sha256(f"{resolved}\0{digest}".encode()).hexdigest()[:16]
    return f"divekit_user_{stem}_{tag}"


def _run_module(source: bytes, path: Path, resolved: Path, digest: str) -> types.ModuleType:
    """Compile and execute ``source`` as a fresh module; errors become one line."""
    try:
        code = compile(source, str(resolved), "exec", dont_inherit=True)
    except SyntaxError as err:
        raise ConfigError(f"{path}:{err.lineno or 1}: {err.msg}") from None
    except ValueError as err:  # e.g. null bytes in the source
        raise ConfigError(f"{path}: cannot be compiled ({err})") from None
    name = module_name(resolved, digest)
    module = types.ModuleType(name)
    module.__file__ = str(resolved)
    sys.modules[name] = module
    folder = str(resolved.parent)
    sys.path.insert(0, folder)
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as err:
        sys.modules.pop(name, None)
        raise ConfigError(f"importing {path} raised {describe_exception(err, resolved)}") from None
    finally:
        _remove_first(sys.path, folder)
    return module


def _remove_first(items: list[str], item: str) -> None:
    if item in items:
        items.remove(item)


def describe_exception(err: BaseException, source: Path | str | None = None) -> str:
    """``TypeError: message (file.py:LINE)``: the first line of the message and where it was raised.

    The line is the deepest frame in ``source`` (the learner's file) when given
    and present in the traceback, else the deepest frame.
    """
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    frames = traceback.extract_tb(err.__traceback__)
    if source is not None:
        frames = [f for f in frames if f.filename == str(source)] or frames
    if frames:
        text += f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})"
    return text


def _missing_name(path: Path, name: str, module: types.ModuleType) -> ConfigError:
    defined = defined_names(module)
    close = closest(name, defined) if defined else None
    hint = f" Did you mean {close!r}?" if close else ""
    listing = f" It defines: {', '.join(defined)}." if defined else " It defines nothing public."
    return ConfigError(f"{path} has no {name!r}.{hint}{listing}")


def defined_names(module: types.ModuleType) -> list[str]:
    """The public names a module defines itself (not the modules or names it imported)."""
    names = []
    for key, value in vars(module).items():
        if key.startswith("_") or isinstance(value, types.ModuleType):
            continue
        origin = getattr(value, "__module__", module.__name__)
        if origin == module.__name__ or not callable(value):
            names.append(key)
    return names
