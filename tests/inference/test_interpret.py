"""Interpretation on tiny runs: the numbers agree with scikit-learn and PyTorch, the files are written."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix
from torch.nn import functional as F

from divekit.errors import ConfigError
from divekit.inference.interpret import ClassificationInterpretation, interpret_run, show_batch, to_uint8
from divekit.runs import resolve_config, train

QUIET = {"train.progress": False}


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "softmax"
    config = resolve_config("softmax", overrides={**QUIET, "train.epochs": 1, "data.val_split": 0.1})
    train(config, out_dir=folder, log=lambda m: None)
    return folder


@pytest.fixture(scope="module")
def interp(classifier_run):
    return ClassificationInterpretation.from_run(classifier_run)


def test_the_numbers_match_a_direct_computation(interp, classifier_run):
    from divekit.runs import load_run
    from divekit.runs.build import build_source

    run = load_run(classifier_run)
    test = build_source(run.config).data.test
    logits = run.model(test.images.float() / 255)
    assert torch.equal(interp.labels, test.labels) and torch.equal(interp.images, test.images)
    assert torch.allclose(interp.probs, logits.softmax(1), atol=1e-6)
    assert torch.allclose(interp.losses, F.cross_entropy(logits, test.labels, reduction="none"), atol=1e-4)
    expected = confusion_matrix(test.labels.numpy(), logits.argmax(1).numpy(), labels=range(10))
    assert np.array_equal(interp.confusion_matrix(), expected)


def test_per_class_accuracy_top_losses_and_confusions(interp):
    matrix = interp.confusion_matrix()
    rows = interp.per_class_accuracy()
    assert [r[0] for r in rows] == [str(i) for i in range(10)]
    assert sum(r[1] for r in rows) == int((interp.predictions == interp.labels).sum()) == np.trace(matrix)
    assert sum(r[2] for r in rows) == len(interp.labels)
    top = interp.top_losses(5)
    assert [float(interp.losses[i]) for i in top] == sorted(interp.losses.tolist(), reverse=True)[:5]
    confused = interp.most_confused()
    assert all(matrix[int(t), int(p)] == n for t, p, n in confused) and sum(n for *_, n in confused) == matrix.sum() - np.trace(matrix)


def test_the_grid_marks_wrong_predictions_in_red(interp):
    wrong = next(i for i in range(len(interp.labels)) if interp.predictions[i] != interp.labels[i])
    right = next(i for i in range(len(interp.labels)) if interp.predictions[i] == interp.labels[i])
    fig = interp.grid_figure([wrong, right])
    titles = [ax.title for ax in fig.axes]
    assert titles[0].get_color() == "red" and "\ntrue: " in titles[0].get_text()
    assert titles[1].get_color() == "black" and "true" not in titles[1].get_text()


def test_the_command_writes_the_pngs_and_csvs(classifier_run, tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "divekit", "interpret", str(classifier_run), "--out", str(tmp_path),
                           "--split", "val"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = {"predictions.png", "top-losses.png", "confusion-matrix.png", "per-class-accuracy.png",
             "predictions.csv", "per-class.csv"}  # fmt: skip
    assert {line.split("/")[-1] for line in done.stdout.split()} == names
    for name in names:
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    import json

    assert len(rows) == json.loads((classifier_run / "task.json").read_text())["splits"]["val"]
    assert rows[0].keys() == {"index", "true", "predicted", "probability", "loss", "correct"}


def test_from_model_on_plain_batches_and_non_images():
    torch.manual_seed(0)
    X, y = torch.randn(20, 4), torch.arange(20) % 3
    model = torch.nn.Linear(4, 3)
    interp = ClassificationInterpretation.from_model(model, [(X[:10], y[:10]), (X[10:], y[10:])], class_names="abc")
    assert interp.images is None and interp.confusion_matrix().sum() == 20
    with pytest.raises(ConfigError, match="not images"):
        interp.grid_figure()


def test_to_uint8_stretches_normalised_images():
    X = torch.tensor([[[[-1.0, 1.0]]]])
    assert to_uint8(X).tolist() == [[[[0, 255]]]] and to_uint8(torch.ones(2, 5)) is None


def test_show_batch_of_images_augmented_and_of_text():
    plain = show_batch("digits", count=4)
    augmented = show_batch("digits", count=4, augment="crop")
    assert len(plain.axes) == 4 and [ax.get_title() for ax in plain.axes] == [ax.get_title() for ax in augmented.axes]
    first = lambda fig: fig.axes[0].get_images()[0].get_array()  # noqa: E731
    assert not np.array_equal(first(plain), first(augmented))  # the same images, cropped
    rows = show_batch("pydoc", count=2, config={"task.options.max_tokens": 5000})
    assert len(rows) == 2 and rows[0][0][1:] == rows[0][1][:-1]  # the target is the input shifted by one
    pairs = show_batch("numbers-fr", count=2)
    assert len(pairs) == 2 and all(isinstance(s, str) and s for pair in pairs for s in pair)


def test_a_language_model_run_gives_samples_at_each_temperature(tmp_path):
    config = resolve_config("rnn-lm", overrides={**QUIET, "train.epochs": 1, "task.options.max_tokens": 4000,
                                                 "model.options.num_hiddens": 16})  # fmt: skip
    train(config, out_dir=tmp_path / "lm", log=lambda m: None)
    (path,) = interpret_run(tmp_path / "lm", tmp_path / "out", prefixes=["the", "a"], temperatures=[0, 1], length=10)
    rows = list(csv.DictReader(path.open()))
    assert [(r["prefix"], float(r["temperature"])) for r in rows] == [("the", 0), ("the", 1), ("a", 0), ("a", 1)]
    from divekit.inference.generate import TextGenerator

    greedy = TextGenerator.from_run(tmp_path / "lm").complete("the", length=10)
    assert rows[0]["text"] == greedy and all(r["text"].startswith(r["prefix"]) for r in rows)


def test_a_translation_run_gives_attention_maps(tmp_path):
    config = resolve_config("transformer", overrides={**QUIET, "train.epochs": 1, "task.options.num_examples": 200,
                                                      "task.options.num_test": 4})  # fmt: skip
    train(config, out_dir=tmp_path / "tf", log=lambda m: None)
    paths = interpret_run(tmp_path / "tf", tmp_path / "out", count=2)
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in paths)
    assert names == ["sentence-1/decoder-cross-attention.png", "sentence-1/encoder-self-attention.png",
                     "sentence-2/decoder-cross-attention.png", "sentence-2/encoder-self-attention.png",
                     "translations.csv"]  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "out" / "translations.csv").open()))
    assert len(rows) == 2 and all(r["reference"] and r["book_bleu"] for r in rows)
