"""The language-modelling task: perplexity, hidden-state handling, resuming, held-out text (notes §6.3-§6.8)."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from torch.nn import functional as F

from divekit.errors import ConfigError, DataError
from divekit.engine import checkpoint as ckpt
from divekit.runs import resolve_config, train
from divekit.runs.build import build_source
from tests.helpers import build_parts, make_trainer
from divekit.engine.trainer import Callback, TrainingInterrupted

TEXT = "the time traveller smiled round at us then still smiling faintly he began\n" * 12


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _config(corpus_file, model="gru-lm", **overrides):
    settings = {"data.data_dir": str(corpus_file), "model.options.num_hiddens": 16, "data.batch_size": 4,
                "task.options.num_steps": 8, "train.epochs": 3, "train.progress": False, "train.threads": 1}
    settings.update(overrides)
    return resolve_config(model, data="text-file", overrides=settings)


def test_training_reports_perplexity_and_tokens_per_second(corpus_file, tmp_path):
    result = train(_config(corpus_file, **{"train.epochs": 6, "optim.lr": 2.0}), out_dir=tmp_path / "run")
    first, last = result.history[0], result.final
    assert last["train_ppl"] == pytest.approx(math.exp(last["train_loss"]))
    assert last["train_ppl"] < first["train_ppl"] < 30
    assert last["train_tokens_per_s"] > 0 and last["epoch_tokens_per_s"] > 0
    assert "test_ppl" not in last  # nothing held out, as in the book
    info = json.loads((tmp_path / "run" / "task.json").read_text())
    assert info["token"] == "char" and info["model_options"] == {"vocab_size": info["vocab_size"]}
    assert (tmp_path / "run" / "vocab.json").is_file()
    assert result.config.optim.clip_grad == 1.0  # the models' recipe clips at 1


class _Recorder(torch.nn.Module):
    """Wraps a model and records the state it receives."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.received = []

    def forward(self, X, state=None):
        self.received.append(state)
        return self.model(X, state)


@pytest.mark.parametrize("sampling", ["sequential", "random"])
def test_state_detached_and_carried_or_reinitialised(corpus_file, sampling):
    config = _config(corpus_file, model="lstm-lm", **{"task.options.sampling": sampling})
    parts = build_parts(config)
    model, objective = _Recorder(parts.model), parts.objective
    loader = parts.source.train_batches(seed=0)
    for epoch in range(2):
        objective.begin_epoch(epoch=epoch)
        for batch in loader:
            objective.train_step(model, batch).loss.backward()
    per_epoch = len(loader)
    starts = model.received[::per_epoch]
    assert starts == [None, None]  # every epoch starts from a zero state
    later = model.received[1:per_epoch]
    if sampling == "random":
        assert all(s is None for s in later)
    else:
        assert all(isinstance(s, tuple) and not s[0].requires_grad and not s[1].requires_grad for s in later)


def test_eval_perplexity_carries_the_state_over_the_whole_held_out_text(corpus_file):
    from divekit.engine.evaluation import eval_sums

    config = _config(corpus_file, **{"data.val_split": 0.25, "data.eval_batch_size": 1})
    parts = build_parts(config)
    model = parts.model.eval()
    with torch.no_grad():
        sums = eval_sums(model, parts.objective, parts.source.eval_batches()["val"], device=torch.device("cpu"))
        ids = parts.source.val_ids
        logits, _ = model(ids[None, :-1])  # one pass over the whole held-out stream
        expected = F.cross_entropy(logits[0], ids[1:], reduction="sum").item()
    assert sums["count"] == len(ids) - 1
    assert sums["loss"] == pytest.approx(expected, rel=1e-5)
    assert len(parts.source.train_ids) + len(ids) == len(TEXT.replace("\n", ""))
    assert make_trainer(config).monitor == "val_ppl"


def test_uniform_prediction_has_perplexity_vocab_size(corpus_file):
    parts = build_parts(_config(corpus_file))
    V = len(parts.source.vocab)
    metrics = parts.objective.metrics({"loss": math.log(V) * 100, "count": 100}, "test")
    assert metrics["test_ppl"] == pytest.approx(V)
    assert parts.objective.metrics({}, "test") == {}


class _StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, step):
        if step == self.step:
            trainer.request_stop()


def _trainer(config, out_dir, callbacks=()):
    return make_trainer(config, out_dir, callbacks=callbacks)


def _timeless(history):
    return [{k: v for k, v in r.items() if "time" not in k and "per_s" not in k} for r in history]


def test_resume_mid_epoch_is_bit_identical_including_the_hidden_state(corpus_file, tmp_path, monkeypatch):
    config = _config(corpus_file, model="lstm-lm", **{"model.options.dropout": 0.3, "model.options.num_layers": 2})
    reference = _trainer(config, tmp_path / "a")
    reference.fit()
    steps = reference.steps_per_epoch
    assert steps >= 3
    interrupted = _trainer(config, tmp_path / "b", callbacks=[_StopAt(steps + 2)])  # mid-way through epoch 2
    with pytest.raises(TrainingInterrupted):
        interrupted.fit()
    saved = tmp_path / "mid-epoch.pt"
    shutil.copy(tmp_path / "b" / "checkpoints" / "last.pt", saved)
    assert ckpt.load_checkpoint(saved)["task"]["hidden"] is not None
    resumed = _trainer(config, tmp_path / "b")
    resumed.fit(resume_from=saved)
    for a, b in zip(reference.raw_model.state_dict().values(), resumed.raw_model.state_dict().values()):
        assert torch.equal(a, b)
    assert _timeless(resumed.history) == _timeless(reference.history)
    # the check can fail: dropping the carried state on resume changes the weights
    from divekit.tasks.language_model import LanguageModeling

    monkeypatch.setattr(LanguageModeling, "load_state_dict", lambda self, state: None)
    forgetful = _trainer(config, tmp_path / "c")
    forgetful.fit(resume_from=saved)
    assert not torch.equal(forgetful.raw_model.linear.weight, reference.raw_model.linear.weight)


def test_bad_task_options_and_short_text_are_clear_errors(corpus_file, tmp_path):
    with pytest.raises(ConfigError, match="task.options.token"):
        build_source(_config(corpus_file, **{"task.options.token": "byte"}))
    with pytest.raises(ConfigError, match="task.options: unknown option 'resize'"):
        build_source(_config(corpus_file, **{"task.options.resize": 4}))
    with pytest.raises(DataError, match="gives no batch"):
        build_source(_config(corpus_file, **{"task.options.max_tokens": 20}))
    with pytest.raises(ConfigError, match="data set 'digits' is for the classification task, not language-model"):
        resolve_config("gru-lm", data="digits")

def test_the_books_time_major_output_gives_the_same_loss():
    from divekit.tasks.language_model import LanguageModeling

    torch.manual_seed(0)
    X, Y = torch.randint(0, 7, (3, 5)), torch.randint(0, 7, (3, 5))
    logits = torch.randn(3, 5, 7)

    class Ours(torch.nn.Module):
        def forward(self, X, state=None):
            return logits, None

    class Book(torch.nn.Module):  # d2l's RNNModel: outputs (num_steps * batch_size, vocab_size)
        def forward(self, X, state=None):
            return logits.transpose(0, 1).reshape(-1, 7), None

    objective = LanguageModeling()
    ours, book = objective.train_step(Ours(), (X, Y)), objective.train_step(Book(), (X, Y))
    torch.testing.assert_close(ours.loss, book.loss)
    objective.check_output(Book(), (X, Y))
