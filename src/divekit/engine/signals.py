"""Signals during training: finish the step, checkpoint, then stop.

SIGINT (Ctrl-C) and SIGTERM (what cluster schedulers send before killing a
job) only set a flag; the trainer checks it after each step, writes a
checkpoint and exits with a distinct code. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def stop_requests(current: Callable[[], int | None], request: Callable[[int], None]) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``request(signum)`` while the block runs.

    ``current()`` tells which signal is already pending; a second SIGINT
    raises ``KeyboardInterrupt``. Outside the main thread (where Python
    cannot install handlers) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and current() == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now; the last checkpoint stays
        request(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
