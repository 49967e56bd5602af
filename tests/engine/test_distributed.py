"""Data-parallel training with torchrun and DDP (gloo, two CPU processes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from divekit.io import load

COMMON = ["--epochs", "2", "--no-progress", "--batch-size", "32", "--threads", "1", "--seed", "3", "--optimizer", "sgd",
          "--lr", "0.1"]  # SGD: float differences stay float-sized (Adam divides them by tiny second moments)


def divekit(*args: str, nproc: int = 1, **kwargs) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
    return subprocess.run([sys.executable, *launcher, "-m", "divekit", *args], capture_output=True, text=True,
                          timeout=300, **kwargs)  # fmt: skip


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load(folder / "checkpoints" / "last.pt")["model"]


def assert_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=key)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ddp") / "single"
    done = divekit("train", "mlp", *COMMON, "--out", str(folder))
    assert done.returncode == 0, done.stderr
    return folder


def test_two_processes_equal_one_with_the_same_global_batch(single, tmp_path):
    """`divekit train --nproc 2` launches torchrun; the result equals one process's, to float tolerance."""
    folder = tmp_path / "ddp"
    done = divekit("train", "mlp", *COMMON, "--out", str(folder), "--nproc", "2")
    assert done.returncode == 0, done.stderr
    assert_close(final_weights(folder), final_weights(single))
    history = json.loads((folder / "metrics.json").read_text())
    single_history = json.loads((single / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]  # only rank 0 wrote, once per epoch
    assert history[-1]["test_acc"] == pytest.approx(single_history[-1]["test_acc"], abs=0.01)
    assert done.stdout.count("run folder:") == 1  # only rank 0 prints


def test_checkpoints_move_between_ddp_and_a_single_process(single, tmp_path):
    one_epoch = [a if a != "2" else "1" for a in COMMON]
    first = tmp_path / "ddp-then-single"
    assert divekit("train", "mlp", *one_epoch, "--out", str(first), nproc=2).returncode == 0
    done = divekit("train", "--resume", "--out", str(first), "--epochs", "2", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert_close(final_weights(first), final_weights(single))
    second = tmp_path / "single-then-ddp"
    assert divekit("train", "mlp", *one_epoch, "--out", str(second)).returncode == 0
    done = divekit("train", "--resume", "--out", str(second), "--epochs", "2", "--no-progress", nproc=2)
    assert done.returncode == 0, done.stderr
    assert_close(final_weights(second), final_weights(single))


def test_killing_one_rank_stops_the_others_with_a_clear_error(tmp_path):
    folder = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "divekit",
         "train", "mlp", "--epochs", "500", "--no-progress", "--threads", "1", "--out", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while not (folder / "metrics.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    workers = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()
    killed = [pid for pid in workers if b"RANK=1" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")]
    assert len(killed) == 1
    os.kill(int(killed[0]), signal.SIGKILL)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    assert "divekit: error: rank 0: another process of this distributed run failed or was killed" in err
    assert "restart the run with --resume" in err
    state = load(folder / "checkpoints" / "last.pt")
    assert state["progress"]["epoch"] >= 1 and all(torch.isfinite(v).all() for v in state["model"].values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_on_loopback(single, tmp_path):
    """`torchrun --nnodes 2` with one process per "machine", both on 127.0.0.1."""
    folder, port = tmp_path / "two-nodes", free_port()
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={rank}",
             "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
             "-m", "divekit", "train", "mlp", *COMMON, "--out", str(folder)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1] + outputs[1][1]
    assert_close(final_weights(folder), final_weights(single))


@pytest.mark.parametrize("family, args", [
    ("language model", ["rnn-lm", "--max-tokens", "4000"]),
    ("seq2seq", ["seq2seq", "--num-examples", "640", "--option", "dropout=0", "--lr", "0.5"]),
])  # fmt: skip
def test_other_task_families_match_one_process(tmp_path, family, args):
    """Language models split the batch rows (each rank carries its rows' hidden state); seq2seq weights each
    rank's token mean by its share of the global batch's tokens. Dropout is off: ranks draw their own masks."""
    common = ["--epochs", "2", "--no-progress", "--threads", "1", "--optimizer", "sgd"]
    results = []
    for nproc in (1, 2):
        folder = tmp_path / f"{nproc}"
        done = divekit("train", *args, *common, "--out", str(folder), nproc=nproc)
        assert done.returncode == 0, done.stderr
        results.append(final_weights(folder))
    assert_close(results[1], results[0])


FIT_SCRIPT = '''
import sys
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import divekit

g = torch.Generator().manual_seed(0)
X = torch.randn(200, 1, 8, 8, generator=g)
y = (X.mean(dim=(1, 2, 3)) > 0).long()
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 2))
loader = DataLoader(TensorDataset(X, y), batch_size=20, shuffle=True)
result = divekit.fit(net, loader, epochs=2, lr=0.2, config={"train.progress": False, "train.threads": 1},
                     out_dir=sys.argv[1], log=lambda m: None)
'''


def test_fit_on_a_plain_dataloader_under_torchrun_equals_one_process(tmp_path):
    """Each process reads every batch of the user's DataLoader (shuffled the same way, from the run's seed) and
    keeps its share of the rows: two processes compute what one process computes with the whole batch."""
    script = tmp_path / "fit_script.py"
    script.write_text(FIT_SCRIPT)
    results = []
    for nproc in (1, 2):
        folder = tmp_path / f"fit{nproc}"
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
        done = subprocess.run([sys.executable, *launcher, str(script), str(folder)], capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        results.append(final_weights(folder))
    assert_close(results[1], results[0])
