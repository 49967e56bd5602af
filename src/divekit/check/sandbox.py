"""Check a learner's file in a child process that a time limit and a memory limit stop.

The parent never imports the learner's file: it hashes it and hands path,
hash and options to ``python -m divekit.check.child``, which refuses a file
whose bytes changed since, loads it, and streams the report back as JSON
lines over a pipe of its own (the learner's prints go to stderr). The child
sets its address-space limit (``RLIMIT_AS``) to what it holds after start-up
plus ``memory_limit`` and an alarm of ``time_limit`` seconds; the parent kills
it should it not stop a little after that. Either way the report says which
limit was hit, while which property ran, and keeps the properties finished before.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from divekit.check.model import DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT
from divekit.check.report import FAIL, NOT_RUN, PropertyResult, Report
from divekit.errors import ConfigError, DivekitError
from divekit.userfile import file_sha256, parse_spec

STARTUP_LIMIT = 120.0  # seconds for the child to import torch and hypothesis on a busy machine
STDERR = 2  # the learner's prints go to this process's stderr (its fd, whatever sys.stderr is now)
GRACE = 5.0  # seconds the child has to stop itself after its alarm before the parent kills it


class ChildCrash(RuntimeError):
    """The child failed in a way that is the checker's fault, not the learner's."""


class CheckStopped(DivekitError):
    """A limit stopped the learner's file while it was being imported, before any property ran."""

    exit_code = 1


def check_file(spec: str, concept: str | None, *, mapping: Mapping[str, str] | None = None, max_examples: int,
               seed: int, time_limit: float = DEFAULT_TIME_LIMIT,
               memory_limit: int = DEFAULT_MEMORY_LIMIT) -> Report:  # fmt: skip
    """Check ``"path/file.py:NAME"`` against ``concept`` (inferred from NAME when ``None``) in a child process.

    This process imports neither torch nor the catalogue: the child resolves the concept too.
    """
    if time_limit <= 0 or memory_limit <= 0:
        raise ConfigError(f"time_limit and memory_limit must be positive, got {time_limit} and {memory_limit}")
    path, name = parse_spec(spec)
    digest = file_sha256(path)  # reads (never runs) the file: the child runs only these bytes
    request = {"path": str(path), "name": name, "sha256": digest, "concept": concept,
               "mapping": dict(mapping) if mapping else None, "max_examples": max_examples, "seed": seed,
               "time_limit": time_limit, "memory_limit": memory_limit}  # fmt: skip
    messages, status = _run_child(request, time_limit)
    return _assemble(messages, status, time_limit=time_limit, memory_limit=memory_limit)


def _run_child(request: dict[str, Any], time_limit: float) -> tuple[list[dict[str, Any]], str]:
    """Run the child; return its messages and how it ended: ``"done"``, ``"killed"`` or ``"died N"``."""
    read_end, write_end = os.pipe()
    request = request | {"fd": write_end}
    command = [sys.executable, "-m", "divekit.check.child", json.dumps(request)]
    # hypothesis keeps a cache folder; the child's goes in a temporary one, not the learner's folder
    with tempfile.TemporaryDirectory(prefix="divekit-check-") as scratch:
        env = os.environ | {"HYPOTHESIS_STORAGE_DIRECTORY": scratch}
        try:
            child = subprocess.Popen(command, pass_fds=(write_end,), stdin=subprocess.DEVNULL, env=env,
                                     stdout=STDERR, start_new_session=True)  # fmt: skip
        finally:
            os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            messages, finished = _read_messages(pipe, child, time_limit)
        if not finished:
            _kill(child)
        code = child.wait()
    if not finished:
        return messages, "killed"
    return messages, "done" if code in (0, 1, 2) else f"died {code}"


def _read_messages(pipe: Any, child: subprocess.Popen, time_limit: float) -> tuple[list[dict[str, Any]], bool]:
    """Read JSON lines until the child closes the pipe (True) or runs out of time (False)."""
    messages: list[dict[str, Any]] = []
    buffer = b""
    deadline = time.monotonic() + STARTUP_LIMIT
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(timeout=remaining):
                return messages, False
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                return messages, True
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                messages.append(message)
                if message.get("kind") == "ready":  # the learner's code starts now: its clock too
                    deadline = time.monotonic() + time_limit + GRACE


def _kill(child: subprocess.Popen) -> None:
    """Stop the child and anything it started (it leads its own session)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


def _assemble(messages: list[dict[str, Any]], status: str, *, time_limit: float, memory_limit: int) -> Report:
    """The report from the child's messages, completed with the limit that stopped it, if one did."""
    by_kind: dict[str, dict[str, Any]] = {}
    for message in messages:
        by_kind[message["kind"]] = message
    if "error" in by_kind:
        raise ConfigError(by_kind["error"]["message"])
    if "crash" in by_kind:
        raise ChildCrash(f"divekit check failed inside its child process:\n{by_kind['crash']['traceback']}")
    if "start" not in by_kind:
        kind = by_kind.get("limit", {}).get("limit")
        if kind or status == "killed":
            limit = _limit_text(kind, status, time_limit, memory_limit)
            raise CheckStopped(f"importing the file was stopped: {limit}")
        raise ChildCrash(f"the checking process stopped before reporting anything ({status})")
    report = Report.from_dict(by_kind["start"]["report"])
    report.results = [PropertyResult.from_dict(m["result"]) for m in messages if m["kind"] == "result"]
    if "done" in by_kind:
        report.parameters, report.seconds = by_kind["done"]["parameters"], by_kind["done"]["seconds"]
        return report
    limit = _limit_text(by_kind.get("limit", {}).get("limit"), status, time_limit, memory_limit)
    _mark_stopped(report, limit)
    return report


def _limit_text(kind: str | None, status: str, time_limit: float, memory_limit: int) -> str:
    if kind == "memory":
        return f"the memory limit of {_size(memory_limit)} was hit (an allocation that large failed)"
    if kind == "time" or status == "killed":
        return f"the time limit of {time_limit:g} s was hit (an endless or very slow loop?)"
    return f"the checking process died ({status}), most likely at the memory limit of {_size(memory_limit)}"


def _mark_stopped(report: Report, limit: str) -> None:
    """The property that was running fails with the limit; those after it are not run."""
    done = {r.name for r in report.results}
    remaining = [name for name in report.properties if name not in done]
    report.limit = f"{limit} while checking {remaining[0]!r}" if remaining else limit
    for index, name in enumerate(remaining):
        status, reason = (FAIL, limit) if index == 0 else (NOT_RUN, "the check was stopped")
        report.results.append(PropertyResult(name, status, reason=reason))


def _size(count: int) -> str:
    return f"{count / 1024**3:g} GiB" if count >= 1024**3 else f"{count / 1024**2:g} MiB"
