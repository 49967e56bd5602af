"""The front door: any nn.Module on any batches, through the whole engine."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import divekit
from divekit.errors import ConfigError
from divekit.tasks import Seq2Seq

QUIET = {"train.progress": False}


def blobs(n=96, classes=3, features=8, seed=0):
    """Separable clusters: class c is centred on 2 * e_c."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    X = torch.randn(n, features, generator=g) * 0.5
    X[torch.arange(n), y] += 2.0
    return X, y


def mlp(seed=0, features=8, classes=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, classes))


def batches(X, y, size=16):
    return [(X[i:i + size], y[i:i + size]) for i in range(0, len(X), size)]


def textbook_loop(net, train_iter, *, epochs, lr):
    """The book's train_ch6 loop, stripped to its arithmetic."""
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    for _ in range(epochs):
        net.train()
        for X, y in train_iter:
            optimizer.zero_grad()
            F.cross_entropy(net(X), y).backward()
            optimizer.step()
    return net


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_fit_equals_the_textbook_loop_on_the_same_batches(kind):
    if kind == "mlp":
        X, y = blobs()
        make = mlp
    else:
        X = torch.randn(64, 1, 12, 12, generator=torch.Generator().manual_seed(1))
        y = (X.mean(dim=(1, 2, 3)) > 0).long()

        def make(seed=0):
            torch.manual_seed(seed)
            return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 2))
    data = batches(X, y)
    expected = textbook_loop(make(), data, epochs=3, lr=0.2)
    result = divekit.fit(make(), data, epochs=3, lr=0.2, device="cpu", config={**QUIET, "train.channels_last": False},
                         log=lambda m: None)  # fmt: skip
    for (name, a), b in zip(expected.state_dict().items(), result.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)
    assert [r["epoch"] for r in result.history] == [1, 2, 3] and result.out_dir is None


def test_a_plain_dataloader_with_validation_and_test_and_a_run_folder(tmp_path):
    X, y = blobs(192)
    loader = DataLoader(TensorDataset(X[:128], y[:128]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(X[128:160], y[128:160]), batch_size=32)
    test = DataLoader(TensorDataset(X[160:], y[160:]), batch_size=32)
    result = divekit.fit(mlp(), loader, val, test=test, epochs=4, lr=0.5, config=QUIET, out_dir=tmp_path / "run",
                         log=lambda m: None)  # fmt: skip
    assert result.monitor == "val_acc" and result.best["val_acc"] == max(r["val_acc"] for r in result.history)
    assert {"train_loss", "val_acc", "test_acc"} <= set(result.final)
    assert result.final["train_loss"] < result.history[0]["train_loss"]
    for name in ("config.json", "task.json", "metrics.csv", "curves.png", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (tmp_path / "run" / name).is_file(), name
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"] == {**saved["model"], "name": "Sequential", "source": "object"}
    assert saved["data"]["name"] == "python" and saved["task"]["name"] == "classification"


def test_resume_continues_bit_identically_in_python(tmp_path):
    X, y = blobs(128)
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    straight = divekit.fit(mlp(), loader, epochs=3, lr=0.3, config=QUIET, out_dir=tmp_path / "a", log=lambda m: None)

    class Crash(divekit.engine.callbacks.Callback):
        def on_step_end(self, trainer, step):
            if step == 13:
                trainer.request_stop()

    with pytest.raises(divekit.engine.trainer.TrainingInterrupted, match="continue with resume=True"):
        divekit.fit(mlp(), loader, epochs=3, lr=0.3, config=QUIET, out_dir=tmp_path / "b", callbacks=[Crash()],
                    log=lambda m: None)  # fmt: skip
    with pytest.raises(ConfigError, match="already holds a run; continue it with resume=True"):
        divekit.fit(mlp(), loader, epochs=3, lr=0.3, config=QUIET, out_dir=tmp_path / "b", log=lambda m: None)
    resumed = divekit.fit(mlp(seed=5), loader, epochs=3, lr=0.3, config=QUIET, out_dir=tmp_path / "b", resume=True,
                          log=lambda m: None)  # fmt: skip
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_loss_function_with_metric_functions():
    X, y = blobs()
    target = F.one_hot(y, 3).float()
    result = divekit.fit(mlp(), batches(X, target), task=nn.MSELoss(),
                         metrics={"hits": lambda out, t: (out.argmax(1) == t.argmax(1)).float().mean()},
                         epochs=3, lr=0.2, config=QUIET, log=lambda m: None)  # fmt: skip
    assert {"train_loss", "train_hits"} <= set(result.final) and 0 <= result.final["train_hits"] <= 1
    assert result.final["train_loss"] < result.history[0]["train_loss"]


def test_a_registered_data_set_by_name():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))

        def forward(self, X):
            return self.body(X)

    result = divekit.fit(Net(), "digits", epochs=2, lr=0.1, config={**QUIET, "data.val_split": 0.1},
                         log=lambda m: None)  # fmt: skip
    assert result.config.data.name == "digits" and "val_acc" in result.final and result.best is not None


def test_the_wrong_output_shape_is_one_line_before_anything_is_written(tmp_path):
    X, y = blobs()
    flat = nn.Sequential(nn.Linear(8, 3), nn.Flatten(0))
    with pytest.raises(ConfigError, match=r"returned \(6,\) for one batch, expected logits of shape \(2, num_classes\)") as err:
        divekit.fit(flat, batches(X, y), config=QUIET, out_dir=tmp_path / "run")
    assert "\n" not in str(err.value) and not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match=r"returned \(2, 2\) for one batch, expected at least 3 classes"):
        divekit.fit(mlp(classes=2), [(X[:4], torch.tensor([0, 2, 1, 0]))], config=QUIET)
    with pytest.raises(ConfigError, match=r"the model fails on one batch of the data \(RuntimeError"):
        divekit.fit(mlp(features=5), batches(X, y), config=QUIET, out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_seq2seq_needs_its_ids_and_language_models_carry_state_when_asked():
    with pytest.raises(ConfigError, match="seq2seq task needs facts about your data"):
        divekit.fit(mlp(), [(torch.zeros(2, 8), torch.zeros(2))], task="seq2seq", config=QUIET)
    assert Seq2Seq(bos=1).monitor == "loss" and Seq2Seq(bos=1, eos=2, bleu=True).monitor == "bleu"


def test_evaluate_and_predict():
    X, y = blobs()
    net = divekit.fit(mlp(), batches(X, y), epochs=3, lr=0.5, config=QUIET, log=lambda m: None).model
    metrics = divekit.evaluate(net, batches(X, y), device="cpu")
    assert set(metrics) == {"test_loss", "test_acc"} and net.training is True
    logits = divekit.predict(net, X, batch_size=7, device="cpu")
    assert logits.shape == (len(X), 3) and net.training is True
    assert metrics["test_acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert torch.equal(divekit.predict(net, DataLoader(TensorDataset(X, y), batch_size=10), device="cpu"), logits)


def test_a_one_shot_iterator_and_a_bad_task_are_refused():
    X, y = blobs()
    with pytest.raises(ConfigError, match="one-shot iterator"):
        divekit.fit(mlp(), iter(batches(X, y)), config=QUIET)
    with pytest.raises(ConfigError, match="task must be a task name"):
        divekit.fit(mlp(), batches(X, y), task=3, config=QUIET)
    with pytest.raises(ConfigError, match="unknown option 'lrr'; did you mean 'lr'"):
        divekit.fit(mlp(), batches(X, y), config={"optim.lrr": 0.1})
