"""Where data sets live, and the opt-in download that fetches them.

Folders: ``--data-dir`` (or ``data_dir=``) names a folder holding a data
set's files; otherwise ``$DIVEKIT_DATA/<name>``; otherwise a per-user cache
folder, ``$XDG_CACHE_HOME/divekit/<name>`` (``~/.cache/divekit/<name>``).

Downloads only happen when asked for. They use HTTPS, except through an
explicit local mirror (``DIVEKIT_MIRROR`` or ``mirror=``), retry with a
timeout, show progress, and verify the checksum (SHA-256, or the SHA-1 a
publisher gives) before the file is moved into place: a mismatch deletes the
temporary file and says so. A server cannot fill the disk or hold a download
forever: reading stops as soon as more bytes arrive than the file's known
size (or the size the server announced), and each file has a total deadline.
Nothing partial is left behind; the ``.part`` file of a download that was
killed is removed by the next attempt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
from urllib.response import addinfourl
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from divekit.errors import DataError
from divekit.io import DiskWriteError, ensure_folder, os_reason

MIRROR_ENV = "DIVEKIT_MIRROR"
DATA_ENV = "DIVEKIT_DATA"
UNKNOWN_SIZE_LIMIT = 4 << 30  # bytes accepted for a file whose size neither we nor the server know
MIN_RATE = 64 << 10  # bytes/s: a download slower than this on average is abandoned (see deadline_for)
DEADLINE_FLOOR_S = 300.0


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: its official name, checksum and where to get it.

    ``sha1`` is checked instead of ``sha256`` when ``sha256`` is empty, for
    publishers (like the book's data hub) that give only a SHA-1. ``size``
    is the file's length in bytes (0: unknown); a download stops as soon as
    more arrives.
    """

    name: str
    sha256: str
    urls: tuple[str, ...]
    sha1: str = ""
    size: int = 0

    @property
    def checksum(self) -> tuple[str, str]:
        """``(algorithm, hex digest)`` that a download must match."""
        return ("sha256", self.sha256) if self.sha256 else ("sha1", self.sha1)


def cache_root() -> Path:
    """The per-user folder that holds downloaded data sets."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "divekit" / "data"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "divekit"


def dataset_folder(name: str, data_dir: str | os.PathLike | None, expected: Sequence[str] = ()) -> Path:
    """The folder to read data set ``name`` from.

    A user-named folder is used as is, unless it lacks the files and has a
    ``<name>`` subfolder (so ``--data-dir`` may name either the data set's
    own folder or a root that holds several).
    """
    if data_dir is None:
        return cache_root() / name
    folder = Path(data_dir).expanduser()
    has_files = any(candidates_exist(folder, f) for f in expected)
    if not has_files and (folder / name).is_dir():
        return folder / name
    return folder


def candidates_exist(folder: Path, filename: str) -> bool:
    """Whether ``filename`` or its uncompressed twin (without ``.gz``) is in ``folder``."""
    return find_local(folder, filename) is not None


def find_local(folder: Path, filename: str) -> Path | None:
    """``folder/filename``, or the same name without ``.gz``, if either exists."""
    for name in (filename, filename.removesuffix(".gz")):
        if (folder / name).is_file():
            return folder / name
    return None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _urls(remote: RemoteFile, mirror: str | None) -> list[str]:
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if mirror:
        return [mirror.rstrip("/") + "/" + remote.name]
    insecure = [u for u in remote.urls if not u.startswith("https://")]
    if insecure:
        raise DataError(f"refusing to download over plain HTTP: {insecure[0]}; set {MIRROR_ENV} for a local mirror")
    return list(remote.urls)


def deadline_for(size: int) -> float:
    """Seconds allowed for a file of ``size`` bytes: a floor, plus the time at :data:`MIN_RATE`."""
    return DEADLINE_FLOOR_S + (size or UNKNOWN_SIZE_LIMIT) / MIN_RATE


def _fetch(url: str, target: Path, *, expected_size: int, timeout: float, deadline: float, progress: bool,
           algorithm: str = "sha256") -> str:  # fmt: skip
    """Stream ``url`` into ``target``; return the digest (``algorithm``) of what was written.

    Raises :class:`DataError` when the server sends, or announces, more than
    ``expected_size`` bytes (or, unknown, its own Content-Length or
    :data:`UNKNOWN_SIZE_LIMIT`), fewer than it announced, or when the
    ``deadline`` (``time.monotonic()``) passes.
    """
    from tqdm import tqdm

    digest = hashlib.new(algorithm)
    request = urllib.request.Request(url, headers={"User-Agent": "divekit"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
        limit, known = _size_limit(url, response, expected_size)
        received = 0
        with tqdm(total=limit if known else None, unit="B", unit_scale=True, desc=target.name.split(".part")[0],
                  disable=not progress, leave=False) as bar:  # fmt: skip
            while block := response.read1(1 << 16):  # read1: returns what has arrived, so a slow drip is seen
                received += len(block)
                if received > limit:
                    raise DataError(f"{url} sent more than the expected {limit:,} bytes; stopped, and the partial "
                                    "download was deleted")  # fmt: skip
                if time.monotonic() > deadline:
                    raise DataError(f"{url}: too slow, {received:,} bytes in the time allowed; the partial download "
                                    "was deleted (retry later, or use another mirror: data.mirror)")  # fmt: skip
                out.write(block)
                digest.update(block)
                bar.update(len(block))
        if known and received < limit:  # the connection dropped: worth another attempt
            raise ConnectionError(f"the connection closed after {received:,} of {limit:,} bytes")
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _size_limit(url: str, response: addinfourl, expected_size: int) -> tuple[int, bool]:
    """The most bytes to accept, and whether that is the file's size (known, or announced by the server)."""
    announced = response.headers.get("Content-Length")
    try:
        announced_size = int(announced) if announced is not None else None
    except ValueError:
        announced_size = None
    if expected_size and announced_size is not None and announced_size != expected_size:
        raise DataError(f"{url} announces {announced_size:,} bytes, but the file has {expected_size:,}; "
                        "not downloaded (a wrong or tampered mirror?)")  # fmt: skip
    if not expected_size and announced_size is not None and announced_size > UNKNOWN_SIZE_LIMIT:
        raise DataError(f"{url} announces {announced_size:,} bytes, over the {UNKNOWN_SIZE_LIMIT:,}-byte limit; "
                        "not downloaded")  # fmt: skip
    size = expected_size or announced_size
    return (size, True) if size else (UNKNOWN_SIZE_LIMIT, False)


def remove_partial_downloads(folder: Path, name: str) -> None:
    """Delete the ``.<name>.part*`` files that a killed download of ``name`` left in ``folder``."""
    for stale in folder.glob(f".{name}.part*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def download(
    remote: RemoteFile,
    folder: Path,
    *,
    mirror: str | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    progress: bool = True,
    deadline: float | None = None,
) -> Path:
    """Download ``remote`` into ``folder`` and return its path.

    Each URL is tried ``retries`` times with ``timeout`` seconds for each
    network read, all within ``deadline`` seconds for the file (default:
    :func:`deadline_for` its size). The file is written under a temporary
    name and renamed only after its size and checksum (SHA-256, or SHA-1
    where only that is published) match; otherwise the temporary file is
    deleted, as is any left by an earlier download that was killed.

    Raises:
        DataError: every attempt failed, the checksum or size did not match,
            or the deadline passed.
    """
    ensure_folder(folder)
    remove_partial_downloads(folder, remote.name)
    destination = folder / remote.name
    errors: list[str] = []
    ends = time.monotonic() + (deadline if deadline is not None else deadline_for(remote.size))
    for url in _urls(remote, mirror):
        for attempt in range(retries):
            if time.monotonic() > ends:
                raise DataError(f"could not download {remote.name} in the time allowed: " + "; ".join(errors[-3:]))
            try:
                fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.part", dir=folder)
            except OSError as err:
                raise DiskWriteError(f"cannot write into {folder}: {os_reason(err)}") from err
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                algorithm, expected = remote.checksum
                digest = _fetch(url, tmp, expected_size=remote.size, timeout=timeout, deadline=ends,
                                progress=progress, algorithm=algorithm)  # fmt: skip
                if digest != expected:
                    raise DataError(
                        f"checksum mismatch for {remote.name} from {url}: got {algorithm} {digest[:16]}..., "
                        f"expected {expected[:16]}...; the download was deleted"
                    )
                os.replace(tmp, destination)
                return destination
            except DataError as err:
                errors.append(str(err))
                break  # the server answered with the wrong bytes: retrying this URL will not help
            except urllib.error.HTTPError as err:
                errors.append(f"{url}: HTTP {err.code} {err.reason}")
                if 400 <= err.code < 500 and err.code not in (408, 429):
                    break  # the file is not there: asking again will not help
                time.sleep(min(2**attempt, 8) * 0.25)
            except (urllib.error.URLError, OSError, TimeoutError) as err:
                errors.append(f"{url}: {getattr(err, 'reason', err)}")
                time.sleep(min(2**attempt, 8) * 0.25)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
    raise DataError(f"could not download {remote.name}: " + "; ".join(errors[-3:]))
