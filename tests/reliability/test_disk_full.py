"""A full disk during checkpointing: the previous checkpoint survives and --resume works once there is space."""

from __future__ import annotations

import errno
import os
import subprocess
import uuid

import pytest
import torch

from divekit.io import DiskWriteError, load
from divekit.engine.trainer import Callback
from divekit.runs import resolve_config, resume, train

OVERRIDES = {"train.epochs": 3, "train.progress": False}


def quiet(message: str) -> None:
    pass


def weights(folder):
    return load(folder / "checkpoints" / "last.pt")["model"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 6 MiB tmpfs (skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


class FillDisk(Callback):
    """After epoch 1 (its checkpoint written), fill the disk to the last few KiB."""

    def __init__(self, disk):
        self.disk = disk

    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 1:
            filler = self.disk / f"filler-{uuid.uuid4().hex}"
            with open(filler, "wb") as handle:
                try:
                    while True:
                        handle.write(b"\0" * 65536)
                        handle.flush()
                except OSError as err:
                    assert err.errno == errno.ENOSPC


def test_real_full_disk(tiny_disk, tmp_path, monkeypatch):
    straight = train(resolve_config("mlp", overrides=OVERRIDES), out_dir=tmp_path / "straight", log=quiet)
    folder = tiny_disk / "run"
    with pytest.raises(DiskWriteError, match="no space left on device.*free some space, then continue with resume=True"):
        train(resolve_config("mlp", overrides=OVERRIDES), out_dir=folder, log=quiet, callbacks=[FillDisk(tiny_disk)])
    assert load(folder / "checkpoints" / "last.pt")["progress"]["epoch"] == 1  # the epoch-1 checkpoint survived
    assert not [p for p in folder.rglob("*.tmp")]  # no half-written temporary file left
    for filler in tiny_disk.glob("filler-*"):
        filler.unlink()
    resumed = resume(folder, log=quiet)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    a, b = weights(straight.out_dir), weights(folder)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("failing", ["checkpoint", "metrics"])
def test_injected_enospc(tmp_path, monkeypatch, failing):
    """The same with the error injected, so it runs everywhere: in checkpointing, or in metrics writing."""
    import divekit.io as io_module

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to see which file is being written")
    folder = tmp_path / "run"
    real_fsync = io_module.os.fsync
    target = ".last.pt." if failing == "checkpoint" else ".metrics.json."

    def failing_fsync(fd):
        if target in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    class FullAfterEpochOne(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 1:
                monkeypatch.setattr(io_module.os, "fsync", failing_fsync)

    with pytest.raises(DiskWriteError, match="no space left on device"):
        train(resolve_config("mlp", overrides=OVERRIDES), out_dir=folder, log=quiet, callbacks=[FullAfterEpochOne()])
    monkeypatch.setattr(io_module.os, "fsync", real_fsync)
    expected_epoch = 1 if failing == "checkpoint" else 2  # a failed metrics write comes after the checkpoint
    assert load(folder / "checkpoints" / "last.pt")["progress"]["epoch"] == expected_epoch
    assert not [p for p in folder.rglob("*.tmp")]
    resumed = resume(folder, log=quiet)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
