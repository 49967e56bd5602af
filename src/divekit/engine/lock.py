"""A lock that keeps two runs from writing into one output folder.

The lock is a file created with ``O_EXCL`` holding the owner's host, process
id and process start time. A lock whose process is gone (killed with -9, a
crashed machine's reboot) is stale: it is detected and taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from divekit.errors import ConfigError

LOCK_NAME = ".lock"
EMPTY_LOCK_GRACE_S = 1.0


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


class RunLock:
    """``with RunLock(folder):`` holds the folder for this process."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.owned = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid()),
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._check_stale()
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            self.owned = True
            return
        raise ConfigError(f"could not lock {self.path.parent}: another process keeps taking it")

    def _check_stale(self) -> None:
        try:
            text = self.path.read_text()
        except OSError:
            return  # released meanwhile: try again
        try:
            owner = json.loads(text or "{}")
        except ValueError:
            owner = {}
        if not owner:
            # Being written this instant, or left empty by a process killed between creating and writing it:
            # writing takes microseconds, so a lock still empty after a second is stale.
            if time.time() - self._mtime() < EMPTY_LOCK_GRACE_S:
                time.sleep(0.05)
                return
        elif owner.get("host") != socket.gethostname():
            raise ConfigError(
                f"{self.path.parent} is in use by process {owner.get('pid')} on host {owner.get('host')} "
                f"(since {owner.get('since')}); choose another out_dir, or delete {self.path} if that run is dead"
            )
        elif _alive(int(owner.get("pid", -1)), owner.get("start")):
            raise ConfigError(
                f"{self.path.parent} is in use by another run (process {owner['pid']}, since {owner.get('since')}); "
                "wait for it to finish or choose another out_dir"
            )
        self._take_over(text)

    def _take_over(self, stale_text: str) -> None:
        """Remove a stale lock, unless another process replaced it meanwhile."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
        try:
            os.rename(self.path, aside)  # atomic: of two racing processes, one wins
        except FileNotFoundError:
            return
        if aside.read_text() != stale_text:  # a live lock taken meanwhile: put it back
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
