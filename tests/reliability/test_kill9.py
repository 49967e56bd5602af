"""kill -9 at a random moment, then resume: the final weights are bit-identical every time.

Trials run in processes forked from a forkserver that has already imported
divekit, so each trial costs its training time, not a Python start-up.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from pathlib import Path

import pytest
import torch

from divekit.io import load

TRIALS = 20
OVERRIDES = {"train.epochs": 5, "train.progress": False, "train.threads": 1, "data.batch_size": 64,
             "optim.schedule": "cosine", "model.options.dropout": 0.1}  # fmt: skip


def run(folder: str, resume: bool) -> None:
    from divekit.runs import resolve_config, resume as resume_run, train

    if resume and Path(folder, "checkpoints", "last.pt").exists():
        resume_run(folder, log=lambda message: None)
    else:  # killed before the first checkpoint: nothing to resume (a resume would refuse), start again
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        train(resolve_config("mlp", overrides=OVERRIDES), out_dir=folder, log=lambda message: None)


def final(folder: Path) -> dict[str, torch.Tensor]:
    return load(folder / "checkpoints" / "last.pt")["model"]


@pytest.fixture(scope="module")
def ctx():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["divekit.runs.train", "divekit.plot", "matplotlib.figure",
                                    "matplotlib.backends.backend_agg", "tqdm", __name__,
                                    "tests.reliability.forkserver_warmup"])
    return context


def start(ctx, folder: Path, resume: bool):
    proc = ctx.Process(target=run, args=(str(folder), resume))
    proc.start()
    return proc


def wait_for(path: Path, proc, timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not path.exists() and proc.is_alive() and time.perf_counter() < deadline:
        time.sleep(0.002)


def test_kill9_then_resume_is_bit_identical(ctx, tmp_path):
    timings = []
    for name in ("warm-up", "reference"):  # the first fork also starts the server: time the second
        started = time.perf_counter()
        proc = start(ctx, tmp_path / name, False)
        wait_for(tmp_path / name / "config.json", proc)
        folder_made = time.perf_counter()
        proc.join()
        assert proc.exitcode == 0
        timings.append((folder_made - started, time.perf_counter() - folder_made))
    startup, window = timings[-1]
    expected = final(tmp_path / "reference")
    rng = random.Random(2026)
    outcomes = []
    for trial in range(TRIALS):
        folder = tmp_path / f"trial{trial}"
        victim = start(ctx, folder, False)
        if rng.random() < 0.15:  # now and then during start-up, mostly while training and checkpointing
            time.sleep(rng.uniform(0.0, startup))
        else:
            wait_for(folder / "config.json", victim)
            time.sleep(rng.uniform(0.0, window))
        victim.kill()  # SIGKILL: no handler runs, nothing is saved on the way out
        victim.join()
        last = folder / "checkpoints" / "last.pt"
        state = load(last) if last.exists() else None
        outcomes.append("finished" if victim.exitcode == 0 else
                        f"killed in epoch {state['progress']['epoch'] + 1}" if state else "killed before a checkpoint")
        survivor = start(ctx, folder, True)
        survivor.join()
        assert survivor.exitcode == 0, f"trial {trial}: resume failed"
        got = final(folder)
        assert all(torch.equal(got[k], expected[k]) for k in expected), f"trial {trial} ({outcomes[-1]}) differs"
    counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
    print(f"start-up {startup:.2f}s, training {window:.2f}s; {TRIALS} kill -9 trials, all bit-identical: {counts}")
    assert sum(o.startswith("killed") for o in outcomes) >= TRIALS // 2  # the kills really landed mid-run
