"""Where data sets live, and the opt-in download that fetches them.

Folders: ``--data-dir`` (or ``data_dir=``) names a folder holding a data
set's files; otherwise ``$DIVEKIT_DATA/<name>``; otherwise a per-user cache
folder, ``$XDG_CACHE_HOME/divekit/<name>`` (``~/.cache/divekit/<name>``).

Downloads only happen when asked for. They use HTTPS, except through an
explicit local mirror (``DIVEKIT_MIRROR`` or ``mirror=``), retry with a
timeout, show progress, and verify the checksum (SHA-256, or the SHA-1 a
publisher gives) before the file is moved into place: a mismatch deletes the
temporary file and says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from divekit.errors import DataError

MIRROR_ENV = "DIVEKIT_MIRROR"
DATA_ENV = "DIVEKIT_DATA"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: its official name, checksum and where to get it.

    ``sha1`` is checked instead of ``sha256`` when ``sha256`` is empty, for
    publishers (like the book's data hub) that give only a SHA-1.
    """

    name: str
    sha256: str
    urls: tuple[str, ...]
    sha1: str = ""

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


def _fetch(url: str, target: Path, *, timeout: float, progress: bool, algorithm: str = "sha256") -> str:
    """Stream ``url`` into ``target``; return the digest (``algorithm``) of what was written."""
    from tqdm import tqdm

    digest = hashlib.new(algorithm)
    request = urllib.request.Request(url, headers={"User-Agent": "divekit"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=target.name.split(".part")[0],
                  disable=not progress, leave=False) as bar:  # fmt: skip
            while block := response.read(1 << 16):
                out.write(block)
                digest.update(block)
                bar.update(len(block))
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def download(
    remote: RemoteFile,
    folder: Path,
    *,
    mirror: str | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``remote`` into ``folder`` and return its path.

    Each URL is tried ``retries`` times with ``timeout`` seconds per attempt.
    The file is written under a temporary name and renamed only after its
    checksum (SHA-256, or SHA-1 where only that is published) matches; on a
    mismatch the temporary file is deleted.

    Raises:
        DataError: every attempt failed, or the checksum did not match.
    """
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / remote.name
    errors: list[str] = []
    for url in _urls(remote, mirror):
        for attempt in range(retries):
            fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.part", dir=folder)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                algorithm, expected = remote.checksum
                digest = _fetch(url, tmp, timeout=timeout, progress=progress, algorithm=algorithm)
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
