"""``data.data_dir`` without ``data.name``: the data set is inferred from what the path holds, said, or refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from divekit.cli import main
from divekit.errors import ConfigError
from divekit.runs import resolve_config
from divekit.runs.build import infer_data


@pytest.fixture
def paths(tmp_path):
    for k, name in enumerate(("cat", "dog")):
        for i in range(3):
            (tmp_path / "imgs" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), 60 * k, dtype=np.uint8)).save(tmp_path / "imgs" / name / f"{i}.png")
    (tmp_path / "split" / "train" / "a").mkdir(parents=True)
    (tmp_path / "pairs.txt").write_text("go .\tva !\nhi .\tsalut !\n", encoding="utf-8")
    (tmp_path / "book.txt").write_text("It was a bright cold day in April.\n", encoding="utf-8")
    (tmp_path / "prices.csv").write_text("day,price\n1,2\n", encoding="utf-8")
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    return tmp_path


@pytest.mark.parametrize(("name", "expected"), [
    ("imgs", "image-folder"), ("split", "image-folder"), ("pairs.txt", "pairs"), ("book.txt", "text-file"),
    ("prices.csv", "csv-series"),
])  # fmt: skip
def test_the_kind_is_told_from_what_the_path_holds(paths, name, expected):
    assert infer_data(paths / name)[0] == expected


@pytest.mark.parametrize(("name", "message"), [
    ("idx", "folder without class subfolders of images; name the data set with data.name"),
    ("blob.bin", "cannot tell which data set"),
    ("missing", "does not exist"),
])  # fmt: skip
def test_anything_else_is_refused_in_one_line(paths, name, message):
    with pytest.raises(ConfigError, match=message) as err:
        infer_data(paths / name)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("model", "name", "expected"), [
    ("lenet", "imgs", "image-folder"), ("rnn-lm", "book.txt", "text-file"), ("transformer", "pairs.txt", "pairs"),
    ("ar-mlp", "prices.csv", "csv-series"),
])  # fmt: skip
def test_resolve_config_infers_says_so_and_never_keeps_the_embedded_default(paths, capsys, model, name, expected):
    config = resolve_config(model, overrides={"data.data_dir": str(paths / name)})
    assert config.data.name == expected
    assert f"training on it as the data set {expected!r}" in capsys.readouterr().err


def test_a_named_data_set_is_not_second_guessed_and_an_embedded_one_refuses_a_path(paths):
    assert resolve_config("lenet", data="mnist", overrides={"data.data_dir": str(paths / "idx")}).data.name == "mnist"
    with pytest.raises(ConfigError, match="'digits' is embedded and reads no files"):
        resolve_config("lenet", data="digits", overrides={"data.data_dir": str(paths / "imgs")})


def test_the_command_line_refuses_in_one_line_and_trains_on_nothing(paths, capsys, tmp_path):
    assert main(["train", "lenet", "--data-dir", str(paths / "idx"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "name the data set with --data" in err
    assert not (tmp_path / "run").exists()
    assert main(["train", "lenet", "--data-dir", str(paths / "book.txt"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "training on it as the data set 'text-file'" in err and "for the language-model task" in err
