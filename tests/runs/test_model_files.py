"""`divekit train path/to/file.py:NAME`, and when a run's model file may be imported again."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from divekit.cli import main
from divekit.errors import ConfigError
from divekit.runs import load_run

NET = '''
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, width=4):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(in_channels, width, 5, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                                 nn.Flatten(), nn.Linear(16 * width, num_classes))

    def forward(self, X):
        return self.net(X)


def tiny(num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, num_classes))
'''

FAST = ["--epochs", "1", "--no-progress", "--threads", "1", "--train-subset", "256"]


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "code" / "mynet.py"
    path.parent.mkdir()
    path.write_text(NET)
    return path


@pytest.fixture
def trained(model_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", f"{model_file}:SmallCNN", "--option", "width=3", *FAST, "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def test_a_class_from_a_file_trains_and_is_recorded_with_its_hash(trained, model_file):
    import hashlib

    saved = json.loads((trained / "config.json").read_text())["model"]
    assert saved["source"] == "file" and saved["name"] == "SmallCNN" and saved["options"] == {"width": 3}
    assert saved["file"] == str(model_file.resolve())
    assert saved["file_sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()


def test_evaluate_predict_and_export_import_the_unchanged_file(trained, tmp_path, capsys):
    from PIL import Image

    assert main(["evaluate", str(trained), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"test_loss", "test_acc"}
    image = tmp_path / "seven.png"
    Image.new("L", (28, 28), 0).save(image)
    assert main(["predict", str(trained), "--image", str(image), "--top-k", "2"]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: ")
    assert main(["export", str(trained), "--out", str(tmp_path / "w.safetensors")]) == 0


def test_a_function_returning_a_module_works_too(model_file, tmp_path, capsys):
    assert main(["train", f"{model_file}:tiny", *FAST, "--out", str(tmp_path / "fn")]) == 0
    assert load_run(tmp_path / "fn").model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_an_edited_file_is_refused_by_its_hash_and_nothing_runs(trained, model_file, capsys):
    model_file.write_text(NET + "\nraise SystemExit('this line must never run')\n")
    assert main(["evaluate", str(trained)]) == 2
    err = capsys.readouterr().err
    assert "has changed since this run was trained" in err and "--model-file" in err and err.count("\n") == 1


def test_a_moved_file_is_named_with_model_file(trained, model_file, tmp_path, capsys):
    moved = tmp_path / "elsewhere.py"
    shutil.move(model_file, moved)
    assert main(["evaluate", str(trained)]) == 2
    assert "is gone; if it moved, name it with --model-file" in capsys.readouterr().err
    assert main(["evaluate", str(trained), "--model-file", str(moved), "--json"]) == 0


def test_a_planted_path_in_a_run_folder_is_never_imported(trained, tmp_path, capsys):
    import hashlib

    planted = tmp_path / "planted.py"
    planted.write_text(NET + "\nopen(__file__ + '.ran', 'w').close()\n")
    config = json.loads((trained / "config.json").read_text())
    config["model"]["file"] = str(planted)
    config["model"]["file_sha256"] = hashlib.sha256(planted.read_bytes()).hexdigest()  # a hash that matches
    (trained / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", str(trained)]) == 2
    assert "never runs code a run folder points at" in capsys.readouterr().err
    assert not (tmp_path / "planted.py.ran").exists()


def test_a_run_folder_on_another_machine_does_not_import_by_itself(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIVEKIT_HOME", str(tmp_path / "other-machine"))
    with pytest.raises(ConfigError, match="you have not trained from on this machine"):
        load_run(trained)
    assert main(["evaluate", str(trained), "--model-file", str(json.loads((trained / "config.json").read_text())
                                                                 ["model"]["file"]), "--json"]) == 0  # fmt: skip


def test_broken_files_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    for spec, message in ((f"{bad}:Net", "bad.py:1: invalid syntax"), (f"{tmp_path}/none.py:Net", "no such file"),
                          ("nocolon.py", "unknown model")):  # fmt: skip
        assert main(["train", spec, *FAST]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_the_example_model_file_trains(tmp_path, capsys):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "my_cnn.py"
    for name in ("SmallCNN", "MLP"):
        assert main(["train", f"{example}:{name}", *FAST, "--out", str(tmp_path / name)]) == 0
