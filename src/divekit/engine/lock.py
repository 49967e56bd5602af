"""A lock that keeps two runs from writing into one output folder.

The lock is a file created with ``O_EXCL`` holding the owner's host, process
id and process start time. A lock whose process is gone (killed with -9, a
crashed machine's reboot) is stale: it is detected and taken over. A lock
file that cannot be read as such (empty, cut short, garbage, huge) is treated
like an empty one: respected for a moment (it may be being written), then
taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from divekit.errors import ConfigError
from divekit.io import DiskWriteError, ensure_folder, open_regular, os_reason

LOCK_NAME = ".lock"
EMPTY_LOCK_GRACE_S = 1.0
MAX_LOCK_BYTES = 4096  # a real lock holds ~100 bytes; read no more of a corrupt one


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = _start_time(pid)
    return start is None or now is None or now == start


def parse_owner(content: bytes) -> dict[str, Any]:
    """The owner a lock file names, or ``{}`` when it cannot be read as one (empty, cut short, garbage).

    A usable owner is a JSON object with a ``host`` string and a positive
    ``pid`` (and optionally the ``start`` time and ``since``, strings).
    """
    try:
        owner = json.loads(content.decode("utf-8")) if len(content) <= MAX_LOCK_BYTES else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    if not isinstance(owner, dict) or not isinstance(owner.get("host"), str):
        return {}
    pid = owner.get("pid")
    if type(pid) is not int or not 0 < pid < 2**31 or not isinstance(owner.get("start"), (str, type(None))):
        return {}
    return owner


class RunLock:
    """``with RunLock(folder):`` holds the folder for this process."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.owned = False

    def acquire(self) -> None:
        """Take the lock, waiting out a lock being written and taking over a stale one.

        Raises:
            ConfigError: a live process (here or on another host) holds it.
            DiskWriteError: the folder or the lock file cannot be created (the path and the OS reason).
        """
        ensure_folder(self.path.parent)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid()),
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._check_stale()
                continue
            except OSError as err:
                raise DiskWriteError(f"cannot create the lock file {self.path}: {os_reason(err)}") from err
            self.owned = True
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(me, handle)
            except OSError as err:
                self.release()
                raise DiskWriteError(f"cannot write the lock file {self.path}: {os_reason(err)}") from err
            return
        raise ConfigError(f"could not lock {self.path.parent}: another process keeps taking it")

    def _check_stale(self) -> None:
        try:  # never blocks: a named pipe or a device in the lock's place is refused
            with open_regular(self.path, what="lock file", error=DiskWriteError) as handle:
                content = handle.read(MAX_LOCK_BYTES + 1)
        except DiskWriteError as err:
            if isinstance(err.__cause__, FileNotFoundError):
                return  # released meanwhile: try again
            raise
        owner = parse_owner(content)
        if not owner:
            # Being written this instant, or left empty by a process killed between creating and writing it:
            # writing takes microseconds, so a lock still unreadable after a second is stale. (A clock far
            # off, a modification time in the future, does not make it fresh forever.)
            if abs(time.time() - self._mtime()) < EMPTY_LOCK_GRACE_S:
                time.sleep(0.05)
                return
        elif owner.get("host") != socket.gethostname():
            raise ConfigError(
                f"{self.path.parent} is in use by process {owner.get('pid')} on host {owner.get('host')} "
                f"(since {owner.get('since')}); choose another out_dir, or delete {self.path} if that run is dead"
            )
        elif _alive(owner["pid"], owner.get("start")):
            raise ConfigError(
                f"{self.path.parent} is in use by another run (process {owner['pid']}, since {owner.get('since')}); "
                "wait for it to finish or choose another out_dir"
            )
        self._take_over(content)

    def _take_over(self, stale: bytes) -> None:
        """Remove a stale lock, unless another process replaced it meanwhile."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
        try:
            os.rename(self.path, aside)  # atomic: of two racing processes, one wins
        except FileNotFoundError:
            return
        except OSError as err:
            raise DiskWriteError(f"cannot replace the stale lock file {self.path}: {os_reason(err)}") from err
        with open(aside, "rb") as handle:
            replaced = handle.read(MAX_LOCK_BYTES + 1) != stale
        if replaced:  # a live lock taken meanwhile: put it back
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
        aside.unlink()

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def release(self) -> None:
        if self.owned:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self.owned = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
