import json
import socket
import subprocess
import sys

import pytest

from divekit.errors import ConfigError
from divekit.engine.lock import RunLock


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(ConfigError, match="in use by another run"):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: free again
        pass


def test_a_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "start": "1"}))
    with RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] != dead.pid
    assert not (tmp_path / ".lock").exists()


def test_a_lock_held_on_another_host_is_refused(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": "today"}))
    with pytest.raises(ConfigError, match="on host elsewhere.*delete"):
        RunLock(tmp_path).acquire()


def test_a_live_lock_of_another_process_is_respected(tmp_path):
    code = f"from divekit.engine.lock import RunLock; RunLock({str(tmp_path)!r}).acquire(); import time; time.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(100):
            if (tmp_path / ".lock").exists() and (tmp_path / ".lock").read_text():
                break
            subprocess.run(["sleep", "0.05"])
        with pytest.raises(ConfigError, match="in use by another run"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):  # killed with -9: the lock is stale now
        pass


def test_an_empty_lock_left_by_a_process_killed_while_writing_it_is_taken_over(tmp_path):
    """kill -9 between creating the lock file and writing its contents leaves an empty file."""
    import os
    import time

    lock = tmp_path / ".lock"
    lock.write_text("")
    os.utime(lock, (time.time() - 5, time.time() - 5))
    with RunLock(tmp_path):
        pass
    lock.write_text("")  # fresh: it may be being written right now, so it is given a second first
    started = time.monotonic()
    with RunLock(tmp_path):
        assert time.monotonic() - started >= 0.9


CORRUPT_LOCKS = {
    "a JSON list": b"[1, 2]",
    "a number": b"42",
    "a string": b'"me"',
    "null": b"null",
    "a non-numeric pid": json.dumps({"host": socket.gethostname(), "pid": "abc"}).encode(),
    "a pid of 0 (would signal the whole process group)": json.dumps({"host": socket.gethostname(), "pid": 0}).encode(),
    "a negative pid": json.dumps({"host": socket.gethostname(), "pid": -1}).encode(),
    "a huge pid": json.dumps({"host": socket.gethostname(), "pid": 10**30}).encode(),
    "a boolean pid": json.dumps({"host": socket.gethostname(), "pid": True}).encode(),
    "a non-string host": json.dumps({"host": 7, "pid": 1}).encode(),
    "a non-string start": json.dumps({"host": socket.gethostname(), "pid": 1, "start": [1]}).encode(),
    "cut short": b'{"host": "' + socket.gethostname().encode() + b'", "pi',
    "binary garbage": bytes(range(256)) * 4,
    "invalid UTF-8": b'{"host": "\xff\xfe"}',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "huge (10 MB)": b'{"host": "x", "pid": 1, "pad": "' + b"x" * 10_000_000 + b'"}',
}


@pytest.mark.parametrize("case", list(CORRUPT_LOCKS))
def test_a_corrupt_lock_is_treated_like_an_empty_one(tmp_path, case, monkeypatch):
    """Stale (older than the grace period): taken over. Fresh: respected for the grace period, then taken over."""
    import os
    import time

    from divekit.engine import lock as lock_module

    monkeypatch.setattr(lock_module, "EMPTY_LOCK_GRACE_S", 0.3)
    lock = tmp_path / ".lock"
    lock.write_bytes(CORRUPT_LOCKS[case])
    os.utime(lock, (time.time() - 5, time.time() - 5))
    with RunLock(tmp_path) as held:
        assert json.loads(held.path.read_text())["pid"] == os.getpid()
    assert not lock.exists() and list(tmp_path.iterdir()) == []
    lock.write_bytes(CORRUPT_LOCKS[case])  # fresh: it may be being written right now
    started = time.monotonic()
    with RunLock(tmp_path):
        assert time.monotonic() - started >= 0.25


def test_a_lock_dated_in_the_future_is_not_fresh_forever(tmp_path):
    import os
    import time

    lock = tmp_path / ".lock"
    lock.write_bytes(b"garbage")
    os.utime(lock, (time.time() + 3600, time.time() + 3600))
    with RunLock(tmp_path):
        pass


@pytest.mark.parametrize("special", ["fifo", "folder", "device"])
def test_something_else_in_the_locks_place_is_one_line_and_never_hangs(tmp_path, special):
    import os

    from divekit.io import DiskWriteError

    lock = tmp_path / ".lock"
    if special == "fifo":
        os.mkfifo(lock)
    elif special == "folder":
        lock.mkdir()
    else:
        lock.symlink_to("/dev/zero")
    with pytest.raises(DiskWriteError, match=r"lock file .*\.lock is a"):
        RunLock(tmp_path).acquire()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_lock_folder_that_cannot_be_created_is_one_line(tmp_path, where):
    from divekit.io import DiskWriteError

    (tmp_path / "taken").write_text("x")
    folder = tmp_path / "taken" if where == "a file" else tmp_path / "taken" / "run"
    with pytest.raises(DiskWriteError, match=f"cannot create the folder {folder}"):
        RunLock(folder).acquire()
    assert (tmp_path / "taken").read_text() == "x"


def test_a_lock_file_that_cannot_be_created_is_one_line(tmp_path, monkeypatch):
    import errno
    import os

    from divekit.engine import lock as lock_module
    from divekit.io import DiskWriteError

    def refuse(path, flags, mode=0o777):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(lock_module.os, "open", refuse)
    with pytest.raises(DiskWriteError, match=r"cannot create the lock file .*\.lock: Read-only file system"):
        RunLock(tmp_path).acquire()
