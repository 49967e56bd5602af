"""Reading and writing files (notes §1.3 读写文件), safely.

- Every write is atomic: the bytes go to a temporary file in the same folder,
  are flushed to disk, and only then renamed over the target. A crash or a
  full disk mid-write leaves the previous file untouched; a killed write's
  temporary file is cleared by :func:`remove_stale_temporaries`.
- Every read of a user's file is bounded: only regular files are opened
  (a device or a named pipe is refused without blocking on it), whole-file
  reads have a size limit and line reads a line-length limit.
- Loading weights never unpickles arbitrary objects: ``torch.load`` runs
  with ``weights_only=True``, which accepts tensors, numbers, strings and the
  containers of those, and refuses anything that would run code. Safetensors
  files are recognised by their content, whatever their name.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import os
import pickle
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from divekit.errors import CheckpointError, DataError, DivekitError

if TYPE_CHECKING:
    import torch

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # a line with its ending, or the last one without
MAX_LINE_CHARS = 1 << 20  # a prompt, a sentence or a pair longer than 1 MiB is not text a person wrote
MAX_CONFIG_BYTES = 1 << 20  # a config file (config.json, --config, task.json) is a few kilobytes; 1 MiB is far beyond


class DiskWriteError(DivekitError):
    """A write failed (disk full, permission...); the previous file is intact."""

    exit_code = 1


def os_reason(err: OSError) -> str:
    """The operating system's reason for ``err``, in words."""
    return "no space left on device" if err.errno == errno.ENOSPC else (err.strerror or str(err))


# ------------------------------------------------------------------ writing
def ensure_folder(path: str | os.PathLike) -> Path:
    """Create folder ``path`` and its parents if missing; an OS error is one line.

    Raises:
        DiskWriteError: ``path`` or a parent is a file, or the parent is
            read-only, ...: the message names the path and the OS reason.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:  # exist_ok covers folders only: a file of that name is in the way
        raise DiskWriteError(f"cannot create the folder {path}: a file of that name exists") from err
    except OSError as err:
        raise DiskWriteError(f"cannot create the folder {path}: {os_reason(err)}") from err
    return path


def _create_temporary(target: Path) -> tuple[int, Path]:
    """A new file beside ``target``, opened for writing, with the mode ``open`` gives (0666 less the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` only if the block succeeds.

    The temporary file sits in ``path``'s folder (so the rename is atomic on
    the same file system), is fsynced before the rename, and is removed if
    anything fails. Errors from the operating system, including creating the
    folder or the temporary file, become a :class:`DiskWriteError` that names
    the path and says the previous file is unchanged. The new file's mode
    follows the umask, like any file the user creates.
    """
    path = Path(path)
    ensure_folder(path.parent)
    try:
        fd, tmp = _create_temporary(path)
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise _write_error(path, err) from err
        raise


def _write_error(path: Path, err: OSError) -> DiskWriteError:
    return DiskWriteError(f"could not write {path}: {os_reason(err)}; the previous version of the file, if any, "
                          "is intact")  # fmt: skip


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.<random>.tmp`` files that killed writes left in ``folder`` and below.

    Call it only while holding the folder (its run lock): a temporary file of
    a write in progress elsewhere would be removed too. Returns what was removed.
    """
    removed = []
    for tmp in sorted(Path(folder).rglob(".*.tmp")):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                removed.append(tmp)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save(obj: Any, path: str | os.PathLike, *, writer: Callable[[Any, IO], None] | None = None) -> None:
    """Save a tensor, a list or dict of tensors, or a ``state_dict`` atomically.

    ``writer`` defaults to ``torch.save``; it exists so tests can simulate a
    crash halfway through a write.
    """
    import torch  # here, not at the top: readers and the run lock import this module and need no torch

    writer = writer or torch.save
    with atomic_open(path, "wb") as handle:
        writer(obj, handle)


# ------------------------------------------------------------------ reading
_NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))  # fmt: skip


def open_regular(path: str | os.PathLike, *, what: str, error: type[DivekitError] = DataError) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file; refuse anything else at once.

    The file is opened without blocking, so a named pipe with no writer is
    refused instead of hanging, and its type is checked on the open file
    (no window for a swap between the check and the read).

    Args:
        what: what the file is, for the message (``"config file"``).
        error: the error class to raise (its exit code is the command's).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as err:
        raise error(f"{what} {path} does not exist") from err
    except OSError as err:  # a socket cannot be opened at all: still say what it is
        kind = _kind(path)
        raise error(f"{what} {path} is {kind}; it must be a regular file" if kind else
                    f"cannot read {what} {path}: {os_reason(err)}") from err  # fmt: skip
    kind = _kind(fd)
    if kind:
        os.close(fd)
        raise error(f"{what} {path} is {kind}; it must be a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _kind(file: str | os.PathLike | int) -> str | None:
    """``None`` for a regular file, else what it is (``"a named pipe (FIFO)"``...)."""
    try:
        mode = os.stat(file).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")


def read_text(path: str | os.PathLike, *, limit_bytes: int, what: str, error: type[DivekitError] = DataError) -> str:
    """The whole of a UTF-8 text file (a byte-order mark dropped), refusing files over ``limit_bytes``.

    At most ``limit_bytes + 1`` bytes are read, whatever the file claims to hold.
    """
    with open_regular(path, what=what, error=error) as handle:
        data = handle.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise error(f"{what} {path} is larger than the {_size(limit_bytes)} limit for a {what}; is it the right file?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{what} {path} is not UTF-8 text (bad byte at offset {err.start}); convert it to UTF-8") from err


def read_json_object(path: str | os.PathLike, *, what: str, error: type[DivekitError] = DataError,
                     limit_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:  # fmt: skip
    """A JSON file that must hold one object (a config, a run's facts), read within ``limit_bytes``; one line otherwise."""
    text = read_text(path, limit_bytes=limit_bytes, what=what, error=error)
    try:
        loaded = json.loads(text)
    except ValueError as err:
        raise error(f"{what} {path} is not valid JSON ({err})") from err
    if not isinstance(loaded, dict):
        raise error(f"{what} {path} must hold a JSON object, not a {type(loaded).__name__}")
    return loaded


def read_line_pieces(path: str | os.PathLike, *, piece_bytes: int, what: str,
                     error: type[DivekitError] = DataError) -> Iterator[tuple[str, bool]]:  # fmt: skip
    """Stream a UTF-8 text file as ``(text, ends_line)`` pieces of about ``piece_bytes`` bytes.

    Lines end at a line feed, a carriage return or both, as in Python's
    text files; the endings are dropped. A line longer than ``piece_bytes``
    arrives in several pieces, the last with ``ends_line`` true (as is the
    file's last piece), so a huge single line is never held whole (a
    character cut by a piece's end moves whole to the next piece). ``"-"`` reads standard input. The file is opened
    (and a device or pipe refused) at the call; it is read as it is iterated.
    """
    stdin = str(path) == "-"
    handle = sys.stdin.buffer if stdin else open_regular(path, what=what, error=error)
    return _pieces(handle, close=not stdin, piece_bytes=piece_bytes, name=f"{what} {path}", error=error)


def _pieces(handle: BinaryIO, *, close: bool, piece_bytes: int, name: str,
            error: type[DivekitError]) -> Iterator[tuple[str, bool]]:  # fmt: skip
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset, held, after_cr = 0, None, False
    try:
        while raw := handle.readline(piece_bytes):
            try:
                text = decoder.decode(raw)
            except UnicodeDecodeError as err:
                where = offset - len(decoder.getstate()[0]) + err.start
                raise error(f"{name} is not UTF-8 text (bad byte at offset {where}); convert it to UTF-8 "
                            "(e.g. with `iconv -t UTF-8`)") from err  # fmt: skip
            offset += len(raw)
            if after_cr and text.startswith("\n"):  # a "\r\n" that a piece's end cut in two is one line end
                text = text[1:]
            after_cr = text.endswith("\r")
            for part in _LINE.findall(text):
                if held is not None:
                    yield held
                body = part.rstrip("\r\n")
                held = body, len(body) < len(part)
        if held is not None:  # the file's last piece ends its line, with or without a line ending
            yield held[0], True
        if decoder.getstate()[0]:
            raise error(f"{name} is not UTF-8 text (it ends inside a character); convert it to UTF-8")
    finally:
        if close:
            handle.close()


def read_lines(path: str | os.PathLike, *, what: str, max_line_chars: int = MAX_LINE_CHARS,
               error: type[DivekitError] = DataError) -> Iterator[str]:  # fmt: skip
    """The lines of a UTF-8 text file (``"-"``: standard input), lazily, refusing a line over ``max_line_chars``.

    Memory stays bounded by the longest allowed line, whatever the file holds.
    The file is opened (and a device or pipe refused) at the call.
    """
    pieces = read_line_pieces(path, piece_bytes=max_line_chars, what=what, error=error)
    return _joined(pieces, limit=max_line_chars, name=f"{what} {path}", error=error)


def _joined(pieces: Iterator[tuple[str, bool]], *, limit: int, name: str,
            error: type[DivekitError]) -> Iterator[str]:  # fmt: skip
    number, partial = 1, ""
    for text, ends_line in pieces:
        partial += text
        if len(partial) > limit:
            raise error(f"{name}, line {number}: longer than {limit:,} characters, the limit for one line; "
                        "is it the right file?")  # fmt: skip
        if ends_line:
            yield partial
            number, partial = number + 1, ""


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} bytes"


# ------------------------------------------------------------------ weights
SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the JSON header
TORCH_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[:13]  # what torch.save wrote before PyTorch 1.6
PYTORCH_FORMATS = ("zip", "pickle", "unknown")  # what torch.load may read ("unknown": let it try)
OTHER_FORMATS = ((b"\x80", "a Python pickle, not PyTorch's format"), (b"\x1f\x8b", "a gzip file"),
                 (b"\x89HDF", "an HDF5 file (Keras .h5?)"), (b"\x93NUMPY", "a NumPy .npy file"),
                 (b"PK\x05\x06", "an empty zip archive"))  # fmt: skip


def load(path: str | os.PathLike, *, map_location: str | torch.device | None = "cpu") -> Any:
    """Load what :func:`save` wrote (or a safetensors file), refusing anything that is not plain data.

    The format is told from the content, not the name: a PyTorch zip
    archive, PyTorch's older pickle format, or safetensors. Any other
    format is named and refused without being parsed.

    Raises:
        CheckpointError: one line naming the real problem: missing, empty,
            truncated, another format, a corrupt archive or header, or
            pickled objects that would run code when loaded.
    """
    path = Path(path)
    with open_regular(path, what="weights file", error=CheckpointError) as handle:
        head, size = handle.read(16), os.fstat(handle.fileno()).st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); it is not a saved tensor or checkpoint")
    kind = sniff_weights(head)
    if kind == "safetensors":
        return _load_safetensors(path, head, size, map_location)
    if kind not in PYTORCH_FORMATS:
        raise CheckpointError(f"cannot read {path}: {_damage(kind)}")
    import torch

    try:  # a file object: torch.load would pick safetensors by the name alone
        with open(path, "rb") as handle:
            return torch.load(handle, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _unpickling_error(path, kind, err) from err
    except Exception as err:  # whatever a damaged file makes the parser raise (IndexError, KeyError...) is damage
        raise CheckpointError(f"cannot read {path}: {_damage(kind, err)}") from err


def sniff_weights(head: bytes) -> str:
    """What a file's first bytes say it is.

    ``zip`` (PyTorch's format), ``pickle`` (PyTorch's format before 1.6),
    ``safetensors``, ``unknown``, or a description of another format.
    """
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") >= 2:
        return "safetensors"
    if head.startswith(TORCH_LEGACY_MAGIC):
        return "pickle"
    for magic, name in OTHER_FORMATS:
        if head.startswith(magic):
            return name
    printable = sum(32 <= b < 127 or b in b"\t\r\n" for b in head)
    return "a text file" if head and printable == len(head) else "unknown"


def _damage(kind: str, err: BaseException | None = None) -> str:
    detail = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0] if err else ""
    if kind == "zip":
        return f"PyTorch's zip archive is truncated or damaged ({detail}); save or copy it again"
    if kind == "pickle":
        return f"the pickled data is truncated or damaged ({detail}); save or copy it again"
    return f"it is not a PyTorch or safetensors file (it looks like {'an unknown format' if kind == 'unknown' else kind})"


def _unpickling_error(path: Path, kind: str, err: pickle.UnpicklingError) -> CheckpointError:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    refused = next((line for line in lines if "GLOBAL" in line), None)  # torch names the global it refused
    if refused is None:
        return CheckpointError(f"cannot read {path}: {_damage(kind, err)}")
    return CheckpointError(
        f"refused to load {path}: it contains pickled objects other than tensors and plain data ({refused}); "
        "only load files from sources you trust, and re-save them as plain state_dicts"
    )


def _load_safetensors(path: Path, head: bytes, size: int, map_location: Any) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    declared = int.from_bytes(head[:8], "little")
    if declared > min(size - 8, SAFETENSORS_MAX_HEADER):
        raise CheckpointError(f"cannot read {path}: a safetensors file whose header claims {declared:,} bytes, but "
                              f"the file holds {size:,} bytes (at most {SAFETENSORS_MAX_HEADER:,} allowed): it is "
                              "truncated or corrupt")  # fmt: skip
    try:
        return load_file(path, device=str(map_location or "cpu"))
    except (SafetensorError, ValueError, OSError, RuntimeError) as err:
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"cannot read {path}: corrupt safetensors file ({detail})") from err
