"""The validation protocol: for every data source the validation split is disjoint from training and from test,
and nothing is ever chosen on test metrics (best checkpoint, early stopping, "best epoch")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import divekit
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.data.sources.images import ImageOptions, ImageSource
from divekit.data.sources.series import lag_features
from divekit.data.translation import PAD
from divekit.engine import checkpoint as ckpt
from divekit.errors import ConfigError
from divekit.runs import resolve_config
from divekit.runs.build import build_source

SRC = Path(divekit.__file__).parent


def numbered_images(count: int) -> ImageSplit:
    """Images whose first two pixels spell their number, so every example can be traced to its split."""
    images = torch.zeros(count, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = torch.arange(count) // 256, torch.arange(count) % 256
    return ImageSplit(images, torch.arange(count) % 3)


def ids(split: ImageSplit) -> set[int]:
    return set((split.images[:, 0, 0, 0].long() * 256 + split.images[:, 0, 0, 1].long()).tolist())


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_image_sources_carve_validation_from_training_only(seed):
    test = numbered_images(1000)
    test.images[:, 0, 1, 0] = 1  # marks test images apart from training ones
    data = ImageClassificationData("numbered", numbered_images(300), test, ("a", "b", "c"))
    source = ImageSource(data, ImageOptions(), batch_size=32, eval_batch_size=64, val_split=0.2, split_seed=seed)
    train, val = ids(source.train), ids(source.val)
    assert len(val) == 60 and train | val == set(range(300)) and not train & val
    assert (source.val.images[:, 0, 1, 0] == 0).all() and (source.train.images[:, 0, 1, 0] == 0).all()
    assert (source.eval_batches()["test"].tensors[0][:, 0, 1, 0] == 1).all()


def test_image_folders_keep_their_three_splits_apart(tmp_path):
    for k, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for i in range(15):
            Image.fromarray(np.full((4, 4), 9 * i + k, dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    config = resolve_config("softmax", data="image-folder", overrides={
        "data.data_dir": str(tmp_path), "data.val_split": 0.25, "task.options.test_split": 0.2})  # fmt: skip
    files = build_source(config).split_files
    assert sum(map(len, files.values())) == 30 and len(set().union(*files.values())) == 30


def test_text_validation_is_the_held_out_tail():
    config = resolve_config("rnn-lm", overrides={"data.val_split": 0.1, "task.options.max_tokens": 5000})
    source = build_source(config)
    assert len(source.val_ids) == 500 and len(source.train_ids) == 4500
    assert set(source.eval_batches()) == {"val"}  # a language model has no test split to leak into


def decoded_sources(source, arrays) -> set[str]:
    src, valid = arrays[0], arrays[1]
    return {" ".join(source.src_vocab.to_tokens(row[:n - 1].tolist())) for row, n in zip(src, valid)}


@pytest.mark.parametrize("data", ["numbers-fr", "pairs"])
def test_translation_splits_share_no_source_sentence(tmp_path, data):
    overrides = {"data.val_split": 0.1, "task.options.min_freq": 1, "task.options.num_steps": 12}
    if data == "pairs":
        lines = [f"phrase {i % 70} word{i % 13}\tsatz {i}" for i in range(300)]  # repeated sources, several targets
        (tmp_path / "p.tsv").write_text("\n".join(lines), encoding="utf-8")
        overrides["data.data_dir"] = str(tmp_path / "p.tsv")
    source = build_source(resolve_config("seq2seq", data=data, overrides=overrides))
    train = decoded_sources(source, source.train_arrays)
    val, test = set(source.held_out["val"]), set(source.held_out["test"])
    assert val and test and PAD not in " ".join(train)
    assert not train & val and not train & test and not val & test


@pytest.mark.parametrize("data", ["sine", "csv-series"])
def test_series_splits_are_consecutive_and_disjoint_in_time(tmp_path, data):
    overrides = {"data.val_split": 0.2}
    if data == "csv-series":
        (tmp_path / "s.csv").write_text("v\n" + "\n".join(str(i * i % 17) for i in range(120)), encoding="utf-8")
        overrides["data.data_dir"] = str(tmp_path / "s.csv")
    source = build_source(resolve_config("ar-mlp", data=data, overrides=overrides))
    _, targets = lag_features(source.data.values, source.options.tau)
    parts = [source.splits[name][1] for name in ("train", "val", "test")]
    assert all(len(p) for p in parts)
    torch.testing.assert_close(torch.cat(parts), targets)  # each window once, train before val before test


def test_a_test_metric_is_refused_as_the_monitor():
    with pytest.raises(ConfigError, match="would pick checkpoints on the test split"):
        resolve_config("softmax", overrides={"train.monitor": "test_acc"})


def test_the_best_checkpoint_follows_validation_even_when_test_disagrees(tmp_path):
    """Test labels are the validation labels flipped, so test accuracy is 1 - validation accuracy every epoch:
    a choice made on test would pick the worst validation epoch."""
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(256, 2, generator=generator)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).long()
    train = [(X[i:i + 16], y[i:i + 16]) for i in range(0, 192, 16)]
    val = [(X[192:], y[192:])]
    test = [(X[192:], 1 - y[192:])]
    torch.manual_seed(3)
    model = torch.nn.Linear(2, 2)
    result = divekit.fit(model, train, val, test=test, epochs=6, lr=0.05, out_dir=tmp_path / "run")
    val_acc = [r["val_acc"] for r in result.history]
    assert max(val_acc) > min(val_acc)  # the two choices differ, so the check below can fail
    best = ckpt.load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["monitor"] == "val_acc" and result.monitor == "val_acc"
    assert best["metrics"]["epoch"] == 1 + val_acc.index(max(val_acc))
    for record in result.history:
        assert record["test_acc"] == pytest.approx(1 - record["val_acc"])


def test_without_validation_no_best_is_claimed(tmp_path):
    batch = (torch.randn(8, 2), torch.zeros(8, dtype=torch.long))
    result = divekit.fit(torch.nn.Linear(2, 2), [batch], test=[batch], epochs=2, out_dir=tmp_path)
    assert result.best is None and result.monitor is None
    assert not (tmp_path / "checkpoints" / "best.pt").exists()


SELECTION_MODULES = ["engine/trainer.py", "engine/options.py", "engine/checkpoint.py", "engine/callbacks.py",
                     "engine/result.py", "runs/train.py", "runs/fit.py", "runs/load.py", "runs/build.py"]  # fmt: skip


@pytest.mark.parametrize("module", SELECTION_MODULES)
def test_no_selection_code_names_a_test_metric(module):
    """Outside docstrings and messages, the code that chooses checkpoints never spells a test metric: the one
    string allowed is the prefix ``train.monitor`` is refused with."""
    tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
    literals = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    docstrings = {ast.get_docstring(node, clean=False) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}  # fmt: skip
    metric = re.compile(r"^test_\w*$")
    named = [s for s in literals if s not in docstrings and metric.match(s)]
    assert named in ([], ["test_"]) and (not named or module == "engine/options.py"), named
