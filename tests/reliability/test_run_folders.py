"""Run folders under hostile use (issue 15 items 1, 5, 11, 12, and --option in_channels=3): checks under the lock,
consistency of what a folder holds, nothing made or lost by a refused run."""

from __future__ import annotations

import json
import multiprocessing
import shutil

import pytest
import torch

from divekit.cli import main
from divekit.errors import CheckpointError, ConfigError
from divekit.io import load
from divekit.runs import load_run, resolve_config, resume, train

QUIET = {"train.epochs": 1, "train.progress": False, "train.threads": 1}


def _train_into(folder: str, model: str, start, results) -> None:
    from divekit.runs import resolve_config, train

    overrides = {**QUIET, "task.options.max_tokens": 2000} if model == "rnn-lm" else QUIET
    start.wait()
    try:
        train(resolve_config(model, overrides=overrides), out_dir=folder, log=lambda m: None)
        results.put((model, "trained"))
    except ConfigError as err:
        results.put((model, str(err)))


@pytest.mark.parametrize("trial", range(3))
def test_two_runs_started_into_one_folder_at_once_never_both_train(tmp_path, trial):
    """Item 1: the "already holds a run" check is made while holding the lock, so of two runs that start into
    one folder at the same instant exactly one trains and the other is refused (or waits its turn and is refused)."""
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    folder = str(tmp_path / "run")
    procs = [ctx.Process(target=_train_into, args=(folder, model, start, results)) for model in ("mlp", "rnn-lm")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    outcomes = dict(results.get(timeout=5) for _ in procs)
    trained = [m for m, outcome in outcomes.items() if outcome == "trained"]
    assert len(trained) == 1, outcomes
    loser = next(m for m in outcomes if m not in trained)
    assert "already holds a run" in outcomes[loser] or "is in use by another run" in outcomes[loser]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["name"] == trained[0]  # the completed run is the one whose files are there
    assert load(tmp_path / "run" / "checkpoints" / "last.pt")["progress"]["epoch"] == 1


def test_a_completed_run_is_never_overwritten_by_another_model(tmp_path):
    train(resolve_config("mlp", overrides=QUIET), out_dir=tmp_path / "run", log=lambda m: None)
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(resolve_config("lenet", overrides=QUIET), out_dir=tmp_path / "run", log=lambda m: None)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("consistency") / "run"
    train(resolve_config("mlp", overrides={**QUIET, "data.val_split": 0.1}), out_dir=folder, log=lambda m: None)
    return folder


@pytest.fixture
def copy(trained, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(trained, target)
    return target


def _edit_task_json(folder, change):
    info = json.loads((folder / "task.json").read_text())
    change(info)
    (folder / "task.json").write_text(json.dumps(info))


@pytest.mark.parametrize("change, message", [
    (lambda i: i.update(class_names=["a", "b"]), "lists 2 class names for a model with 10 outputs"),
    (lambda i: i.update(class_names="0123456789"), "lists no class names"),
    (lambda i: i.update(input_size=[1, 10**9, 28]), "impossible input_size"),
    (lambda i: i.update(input_size=[300, 28, 28]), "impossible input_size"),
    (lambda i: i.update(input_size=[1, 28]), "impossible input_size"),
    (lambda i: i.update(input_size=[1, -28, 28]), "impossible input_size"),
])  # fmt: skip
def test_an_inconsistent_task_json_is_one_line_before_any_work(copy, change, message, capsys):
    """Item 5: what task.json says must fit the model's weights; otherwise one line, exit 2."""
    _edit_task_json(copy, change)
    with pytest.raises(CheckpointError, match=message):
        load_run(copy)
    image = copy / "x.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(image)
    assert main(["predict", str(copy), "--image", str(image)]) == 2
    err = capsys.readouterr().err
    assert message.split()[0] in err and err.count("\n") == 1


def test_a_cut_vocabulary_is_refused(tmp_path):
    """Item 5: vocab.json cut to 5 tokens no longer gives silently wrong text."""
    text = tmp_path / "t.txt"
    text.write_text("the time traveller smiled round at us then still smiling faintly he began\n" * 30)
    folder = tmp_path / "lm"
    config = resolve_config("gru-lm", data="text-file", overrides={**QUIET, "data.data_dir": str(text),
                                                                    "model.options.num_hiddens": 8})  # fmt: skip
    train(config, out_dir=folder, log=lambda m: None)
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab["idx_to_token"] = vocab["idx_to_token"][:5]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    from divekit.inference.generate import TextGenerator

    with pytest.raises(CheckpointError, match="holds 5 tokens but the model was trained on"):
        TextGenerator.from_run(folder)


def test_resume_without_a_checkpoint_is_refused_and_nothing_is_rewritten(copy, capsys):
    """Item 11: it used to start over silently, rewriting metrics and replacing best.pt."""
    (copy / "checkpoints" / "last.pt").unlink()
    best = (copy / "checkpoints" / "best.pt").read_bytes()
    metrics = (copy / "metrics.json").read_text()
    with pytest.raises(ConfigError, match="has no checkpoints/last.pt to resume from .* start afresh"):
        resume(copy, log=lambda m: None)
    assert main(["train", "--resume", "--out", str(copy)]) == 2
    assert "--out" in capsys.readouterr().err
    assert (copy / "checkpoints" / "best.pt").read_bytes() == best and (copy / "metrics.json").read_text() == metrics


@pytest.mark.parametrize("out", ["", "   ", "\t"])
def test_an_empty_out_is_refused_and_nothing_is_written(out, tmp_path, monkeypatch, capsys):
    """Item 12: `--out ""` (an unset shell variable) wrote a whole run into the current folder."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "mlp", "--epochs", "1", "--no-progress", "--out", out]) == 2
    assert "is empty; name the run folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out, message", [("file", "is a file, not a folder"), ("file/run", "which is a file")])
def test_out_naming_a_file_or_a_path_under_one_is_one_line(out, message, tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    assert main(["train", "mlp", "--epochs", "1", "--no-progress", "--out", str(tmp_path / out)]) == 2
    assert message in capsys.readouterr().err and (tmp_path / "file").read_text() == "keep me"


def test_a_model_built_for_other_data_is_one_line_and_makes_no_folder(tmp_path, capsys):
    """--option in_channels=3 on 1-channel images used to end in a 49-line traceback and a half-made folder."""
    assert main(["train", "lenet", "--option", "in_channels=3", "--no-progress", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the model fails on one batch of the data" in err and "--option" in err
    assert not (tmp_path / "r").exists()


def test_a_read_only_checkpoint_folder_on_resume_is_one_line(copy, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    os.chmod(copy / "checkpoints", 0o500)
    try:
        assert main(["train", "--resume", "--out", str(copy), "--epochs", "2", "--no-progress"]) == 1
        assert "could not write" in capsys.readouterr().err
    finally:
        os.chmod(copy / "checkpoints", 0o700)
    assert torch.is_tensor(next(iter(load(copy / "checkpoints" / "last.pt")["model"].values())))
