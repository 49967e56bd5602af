"""The thread-count pitfall on small machines: PyTorch's default of one thread per core, with a core busy.

    python benchmarks/threads_pitfall.py

Times LeNet training steps (batch 32, 1x28x28) with 1 thread and with one
thread per core, first on an idle machine, then while a second process keeps
one core busy with a pure-Python loop. Also prints what divekit's default
(`divekit.device.default_threads`) picks in each situation.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import torch
from torch.nn import functional as F


def spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def steps_per_second(threads: int, seconds: float = 3.0) -> float:
    from divekit.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model("lenet")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))

    def step() -> None:
        loss = F.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    from divekit.device import default_threads

    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores; LeNet training steps/s, batch 32")
    for busy in (False, True):
        stop = multiprocessing.Event()
        competitor = multiprocessing.Process(target=spin, args=(stop,)) if busy else None
        if competitor:
            competitor.start()
            time.sleep(65 if os.environ.get("WAIT_FOR_LOADAVG") else 1)  # loadavg needs a minute to notice
        one, all_cores = steps_per_second(1), steps_per_second(cores)
        label = "one core busy" if busy else "idle"
        print(f"{label:>14}: 1 thread {one:7.1f}/s, {cores} threads {all_cores:7.1f}/s "
              f"({one / all_cores:.1f}x from using 1); divekit default now: {default_threads()} thread(s)")  # fmt: skip
        if competitor:
            stop.set()
            competitor.join()


if __name__ == "__main__":
    main()
