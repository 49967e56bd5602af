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
