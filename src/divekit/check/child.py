"""The child process of :mod:`divekit.check.sandbox`: load the learner's file under limits and check it.

Run as ``python -m divekit.check.child REQUEST`` where ``REQUEST`` is JSON
with the file's path, name and SHA-256, the concept, the options and the
number of the pipe to write to. Messages are JSON lines, each with a
``kind``: ``ready`` (limits set, the learner's code may start), ``start`` (the
report's header), ``result`` (one per property), ``done``, or ``error`` (the
file cannot be loaded or does not fit: exit 2), ``limit`` (time or memory
hit: exit 1) and ``crash`` (a fault of the checker).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import traceback
from dataclasses import asdict
from typing import IO, Any


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    out = os.fdopen(request["fd"], "w", buffering=1, encoding="utf-8")
    try:
        return _check(request, out)
    except BaseException:  # the checker's own fault: report it rather than die silently
        _send(out, "crash", traceback=traceback.format_exc())
        return 3
    finally:
        out.close()


def _check(request: dict[str, Any], out: IO[str]) -> int:
    import torch

    from divekit.check.catalogue import get_concept, infer_concept
    from divekit.check.engine import check_object
    from divekit.check.model import LimitHit
    from divekit.errors import ConfigError
    from divekit.userfile import load_object

    torch.set_num_threads(1)  # small tensors: threads cost more than they save, and the machine is shared
    _limit_memory(int(request["memory_limit"]))
    _send(out, "ready")
    _start_alarm(float(request["time_limit"]))
    try:
        concept = get_concept(request["concept"]) if request["concept"] else None
        loaded = load_object(path=request["path"], name=request["name"], expected_sha256=request["sha256"])
        concept = concept or infer_concept(request["name"])  # after loading: a misspelt NAME is said first
        source = {"name": request["name"], "path": str(loaded.path), "sha256": loaded.sha256}
        report = check_object(loaded.obj, concept, name=request["name"],
                              mapping=request["mapping"], max_examples=request["max_examples"], seed=request["seed"],
                              source=source, on_start=lambda r: _send(out, "start", report=r.to_dict()),
                              on_result=lambda r: _send(out, "result", result=asdict(r)))  # fmt: skip
    except ConfigError as err:
        _send(out, "error", message=str(err))
        return 2
    except LimitHit as hit:
        _send(out, "limit", limit=hit.kind)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    _send(out, "done", parameters=report.parameters, seconds=report.seconds)
    return report.exit_code


def _send(out: IO[str], kind: str, **fields: Any) -> None:
    out.write(json.dumps({"kind": kind, **fields}) + "\n")
    out.flush()


def _limit_memory(extra: int) -> None:
    """Cap the address space at what this process maps now (torch imported) plus ``extra`` bytes."""
    current = _mapped_bytes()
    if current is None:  # no /proc (not Linux): the parent's time limit still applies
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = current + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _mapped_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _start_alarm(seconds: float) -> None:
    from divekit.check.model import LimitHit

    def stop(signum: int, frame: Any) -> None:
        raise LimitHit("time", "the time limit")

    signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the report is sent: skip the interpreter's (and torch's) slow teardown
