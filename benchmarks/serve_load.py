"""A bounded load test of ``divekit serve`` on 127.0.0.1: requests/s, p50/p99 latency, errors, peak RSS.

Starts ``divekit serve RUN --port 0`` (with and without batching), then N clients
send requests back to back for a fixed time (and at most ``--max-requests`` in all),
each waiting for its answer before the next. Clients run in this process on asyncio,
so on a 2-core machine they share the CPU with the server: numbers are for comparing
batching on and off on one machine at one time, not absolute capacity.

Usage::

    python benchmarks/serve_load.py RUN --route predict --clients 8 --seconds 30
    python benchmarks/serve_load.py LM_RUN --route generate --clients 8 --seconds 30 --length 20
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def start(run: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "divekit", "serve", run, "--port", "0", *extra],
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    while True:
        line = process.stderr.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            raise SystemExit(f"divekit serve failed to start: {line}")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request_maker(route: str, length: int):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for _ in range(16):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    prompts = ["the time traveller", "python is", "a function", "it was", "the module", "in the"]

    def make(i: int) -> dict:
        if route == "predict":
            return {"url": "/predict", "files": {"file": ("x.png", images[i % len(images)], "image/png")}}
        return {"url": "/generate", "json": {"prompt": prompts[i % len(prompts)], "length": length}}

    return make


async def client_loop(client, make, deadline: float, budget: list[int], latencies: list[float], errors: list[str]) -> None:
    i = 0
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        kwargs = make(i)
        i += 1
        t0 = time.perf_counter()
        try:
            response = await client.post(kwargs.pop("url"), **kwargs)
            ok = response.status_code == 200
        except Exception as err:  # noqa: BLE001 - every failure counts as an error
            ok, response = False, err
        latencies.append(time.perf_counter() - t0)
        if not ok:
            errors.append(str(getattr(response, "status_code", response)))


async def load(base: str, route: str, *, clients: int, seconds: float, max_requests: int, length: int) -> dict:
    import httpx

    make = request_maker(route, length)
    latencies: list[float] = []
    errors: list[str] = []
    budget = [max_requests]
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await client.post(**make(0))  # warm-up
        t0 = time.monotonic()
        deadline = t0 + seconds
        await asyncio.gather(*(client_loop(client, make, deadline, budget, latencies, errors) for _ in range(clients)))
        elapsed = time.monotonic() - t0
        info = (await client.get("/info")).json()
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "requests_per_s": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": len(errors), "batching": info["batching"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--route", choices=("predict", "generate"), default="predict")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--length", type=int, default=20, help="tokens per generation")
    parser.add_argument("--threads", type=int, default=1, help="the server's PyTorch threads")
    args = parser.parse_args()
    for label, extra in (("batching off", ["--no-batching"]), ("batching on", [])):
        process, base = start(args.run, [*extra, "--threads", str(args.threads)])
        try:
            result = asyncio.run(load(base, args.route, clients=args.clients, seconds=args.seconds,
                                      max_requests=args.max_requests, length=args.length))  # fmt: skip
            result["peak_rss_mb"] = peak_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
        print(json.dumps({"setting": label, "route": args.route, "clients": args.clients, **result}), flush=True)


if __name__ == "__main__":
    main()
