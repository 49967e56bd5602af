"""The command line, in process (fast) and, where signals and exit codes matter, as a real process."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from divekit.cli import main
from divekit.data import load_dataset

FAST = ["--epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "mlp", "--out", str(folder), *FAST, "--epochs", "2"]) == 0
    return folder


def test_train_prints_the_final_numbers_and_the_run_folder(trained, capsys, tmp_path):
    assert main(["train", "softmax", "--out", str(tmp_path / "r"), *FAST, "--lr", "0.05", "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "softmax on digits: 1 epochs" in out
    assert "train_loss" in out and "train_acc" in out and "test_acc" in out and "examples/s" in out
    assert f"run folder: {tmp_path / 'r'}" in out
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["optim"]["lr"] == 0.05 and saved["data"]["batch_size"] == 64


def test_evaluate(trained, capsys):
    assert main(["evaluate", str(trained), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    history = json.loads((trained / "metrics.json").read_text())
    assert metrics["test_acc"] == pytest.approx(max(r["test_acc"] for r in history))


def test_predict_top_k(trained, capsys, tmp_path):
    data = load_dataset("digits")
    paths = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(data.test.images[i, 0].numpy()).save(path)
        paths.append(str(path))
    assert main(["predict", str(trained), "--image", *paths, "--top-k", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in rows] == paths
    for row, label in zip(rows, data.test.labels[:3].tolist()):
        (best, p1), (_, p2) = row["top"]
        assert 1 >= p1 >= p2 >= 0
    hits = sum(row["top"][0][0] == str(label) for row, label in zip(rows, data.test.labels[:3].tolist()))
    assert hits >= 2


def test_predict_rejects_bad_images_with_one_line(trained, capsys, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["predict", str(trained), "--image", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and err.count("\n") == 1


def test_models_env_and_data_list(capsys):
    assert main(["models"]) == 0
    assert "lenet" in capsys.readouterr().out
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch " in out and "torchvision" in out and "cuda_available" in out and "torch_threads" in out
    assert main(["data", "list"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out


def test_data_show_writes_a_png_grid(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", "digits", "--out", str(out), "--count", "8"]) == 0
    image = Image.open(out)
    assert image.size[0] > 100 and np.asarray(image).std() > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "lenet", "--data", "fashion-mnis"], "unknown data set 'fashion-mnis'. Did you mean 'fashion-mnist'"),
        (["train", "lenet", "--lr", "0"], "--lr must be > 0"),
        (["train", "lenet", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["train", "lenet", "--epochs", "0"], "epochs must be at least 1"),
        (["train", "lenet", "--data", "mnist", "--data-dir", "/nonexistent"], "mnist files not found in /nonexistent"),
        (["train"], "name the model to train"),
        (["train", "lenet", "--option", "depth=3"], "has no option 'depth'"),
        (["train", "--resume"], "--resume needs --out"),
        (["evaluate", "/nonexistent"], "not a divekit run folder"),
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_runs(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def run_cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "divekit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # fmt: skip


def test_python_m_divekit_version():
    proc = run_cli("--version")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("divekit ")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 75), (signal.SIGINT, 130)])
def test_signals_save_a_checkpoint_and_exit_with_a_distinct_code(tmp_path, sig, code):
    folder = tmp_path / "run"
    proc = run_cli("train", "mlp", "--epochs", "200", "--no-progress", "--out", str(folder))
    deadline = time.time() + 60
    while not (folder / "metrics.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"{sig.name} received" in err and "--resume" in err
    resumed = subprocess.run([sys.executable, "-m", "divekit", "train", "--resume", "--out", str(folder),
                              "--epochs", "3", "--no-progress"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert [r["epoch"] for r in json.loads((folder / "metrics.json").read_text())] == [1, 2, 3]


@pytest.fixture
def launched(monkeypatch):
    """Record the command torchrun would be started with instead of replacing this process."""
    calls = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append(argv))
    monkeypatch.delenv("RANK", raising=False)
    return calls


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def test_nproc_above_the_cores_is_refused_unless_asked(launched, monkeypatch, capsys):
    """Before: --nproc 64 started 64 processes of ~800 MB each."""
    cores = _cores()
    monkeypatch.setattr("sys.argv", ["divekit", "train", "mlp", "--nproc", str(cores + 1), "--epochs", "1"])
    assert main(["train", "mlp", "--nproc", str(cores + 1), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--nproc {cores + 1} is more than the {cores} CPU core(s)" in err
    assert "--oversubscribe" in err and launched == []
    assert main(["train", "mlp", "--nproc", str(cores + 1), "--epochs", "1", "--oversubscribe"]) == 0
    assert main(["train", "mlp", "--nproc", str(cores), "--epochs", "1"]) == 0
    first, second = launched
    assert f"--nproc_per_node={cores + 1}" in first and f"--nproc_per_node={cores}" in second
    assert "--nproc" not in first and "--oversubscribe" not in first and first[-4:] == ["train", "mlp", "--epochs", "1"]


def test_nproc_on_gpus_is_bounded_by_the_gpu_count(launched, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr("sys.argv", ["divekit", "train", "mlp", "--nproc", "3"])
    assert main(["train", "mlp", "--nproc", "3", "--device", "cuda"]) == 2
    assert "--nproc 3 is more than the 2 GPU(s)" in capsys.readouterr().err
    assert main(["train", "mlp", "--nproc", "2", "--device", "cuda"]) == 0 and len(launched) == 1


def test_the_program_exits_with_mains_status_and_skips_the_last_collection(monkeypatch):
    import gc

    import divekit.cli

    monkeypatch.setattr(divekit.cli, "main", lambda: 3)
    try:
        with pytest.raises(SystemExit) as stopped:
            divekit.cli.run()
        assert stopped.value.code == 3 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
