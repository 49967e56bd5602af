"""Run folders, checkpoints, config files and images that are wrong in every way we could think of."""

from __future__ import annotations

import shutil

import pytest
import torch
from PIL import Image

from divekit.cli import main
from divekit.errors import CheckpointError, ConfigError, DataError
from divekit.io import load, save
from divekit.runs import load_run, resolve_config, train
from divekit.inference.predict import load_image


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "run"
    train(resolve_config("mlp", overrides={"train.epochs": 1, "train.progress": False, "data.val_split": 0.1}), out_dir=folder,
          log=lambda message: None)  # fmt: skip
    return folder


@pytest.fixture
def copy(run_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(run_dir, target)
    return target


def test_checkpoint_of_another_model_lists_the_mismatches(copy):
    state = load(copy / "checkpoints" / "best.pt")
    state["model"] = {"0.weight": torch.zeros(6, 1, 5, 5), "1.weight": torch.zeros(3, 3)}
    save(state, copy / "checkpoints" / "best.pt")
    with pytest.raises(CheckpointError) as err:
        load_run(copy)
    message = str(err.value)
    assert "does not fit this model" in message and "missing keys" in message and "unexpected keys 0.weight" in message
    assert "shape mismatches 1.weight: checkpoint (3, 3) vs model (256, 784)" in message


@pytest.mark.parametrize("content", [b"", b"{", b'["a list"]', b'{"model": {"nme": "mlp"}}', "é".encode("latin-1")])
def test_corrupt_config_json(copy, content, capsys):
    (copy / "config.json").write_bytes(content)
    assert main(["evaluate", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("divekit: error:") and err.count("\n") == 1


def test_missing_or_corrupt_task_json(copy):
    (copy / "task.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="task.json is not valid JSON"):
        load_run(copy)
    (copy / "task.json").unlink()
    with pytest.raises(CheckpointError, match="task.json.*(no such file|does not exist)"):
        load_run(copy)


def test_missing_checkpoints(copy):
    shutil.rmtree(copy / "checkpoints")
    with pytest.raises(CheckpointError, match="has no checkpoint yet"):
        load_run(copy)


def test_truncated_checkpoint(copy):
    path = copy / "checkpoints" / "best.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="best.pt: PyTorch.s zip archive is truncated or damaged"):
        load_run(copy)


def test_foreign_torch_file_is_not_a_checkpoint(copy):
    torch.save({"weights": torch.ones(2)}, copy / "checkpoints" / "best.pt")
    with pytest.raises(CheckpointError, match="not a divekit checkpoint"):
        load_run(copy)


@pytest.mark.parametrize("text", ['["not", "sections"]', '{"optim": {"lr": "fast"}}', '{"optim": 3}'])
def test_bad_config_files_are_refused(tmp_path, text):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigError):
        resolve_config("mlp", config_file=path)


def test_config_file_in_the_wrong_encoding(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes('{"model": {"name": "mlp"}, "x": "é"}'.encode("utf-16"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        resolve_config("mlp", config_file=path)


def test_image_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(path)  # 81 million pixels in a ~10 KB file
    assert path.stat().st_size < 100_000
    with pytest.raises(DataError, match="over the 67,108,864-pixel limit"):
        load_image(path, channels=1, size=28)


@pytest.mark.parametrize("content", [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"plain text"])
def test_broken_images(tmp_path, content):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match="x.png"):
        load_image(path, channels=1, size=28)


def test_truncated_png(tmp_path):
    path = tmp_path / "t.png"
    Image.effect_noise((64, 64), 50).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated or corrupt|not a readable image"):
        load_image(path, channels=3, size=28)


def test_predict_streams_lazily(run_dir, tmp_path):
    """Images are decoded a batch at a time: a bad file late in the stream fails only when reached."""
    from divekit.inference.predict import predict_images

    good = tmp_path / "good.png"
    Image.new("L", (8, 8), 200).save(good)

    def paths():
        yield from [good] * 5
        raise AssertionError("read past what was asked for")

    predictions = predict_images(run_dir, paths(), batch_size=2)
    assert [p.path for p in (next(predictions), next(predictions))] == [good, good]
