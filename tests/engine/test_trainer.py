"""The trainer on small runs: files it writes, resume bit-identity, NaN handling, signals, early stopping."""

import json
import math
import signal

import pytest
import torch

from divekit.engine.trainer import Callback, TrainingInterrupted
from divekit.errors import ConfigError, NonFiniteLossError
from divekit.io import load
from divekit.runs import resolve_config, resume, train

QUIET = {"train.progress": False}


def config(model="mlp", **overrides):
    return resolve_config(model, overrides={**QUIET, "train.epochs": 2, **overrides})


def quiet(message):
    pass


def weights(folder, which="last"):
    return load(folder / "checkpoints" / f"{which}.pt")["model"]


def test_a_run_writes_metrics_curves_config_and_checkpoints(tmp_path):
    result = train(config(**{"data.val_split": 0.1}), out_dir=tmp_path / "run", log=quiet)
    folder = result.out_dir
    for name in ("config.json", "task.json", "metrics.csv", "metrics.json", "curves.png",
                 "checkpoints/last.pt", "checkpoints/best.pt"):  # fmt: skip
        assert (folder / name).is_file(), name
    history = json.loads((folder / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
                "train_examples_per_s", "epoch_examples_per_s", "step_time_s", "epoch_time_s"):  # fmt: skip
        assert key in history[-1]
    assert history[-1]["train_examples_per_s"] >= history[-1]["epoch_examples_per_s"] > 0
    csv_lines = (folder / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc,test_loss") and len(csv_lines) == 3
    saved = json.loads((folder / "config.json").read_text())
    assert saved["model"]["name"] == "mlp" and saved["train"]["threads"] >= 1  # the thread count used is recorded
    assert json.loads((folder / "task.json").read_text())["class_names"][3] == "3"
    assert not (folder / ".lock").exists()
    best = load(folder / "checkpoints" / "best.pt")
    assert best["monitor"] == "val_acc" and result.monitor == "val_acc"
    assert best["metrics"]["val_acc"] == max(r["val_acc"] for r in history)


def test_without_a_validation_split_no_best_is_claimed(tmp_path):
    result = train(config(), out_dir=tmp_path / "run", log=quiet)
    assert result.best is None and result.monitor is None
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    assert "test_acc" in result.final


def test_monitoring_the_test_split_is_refused():
    with pytest.raises(ConfigError, match="test split"):
        train(config(**{"train.monitor": "test_acc"}), write=False, log=quiet)


def test_the_model_learns_the_digits():
    result = train(config("mlp", **{"train.epochs": 3}), write=False, log=quiet)
    assert result.final["test_acc"] > 0.9


@pytest.mark.parametrize("stop_at", ["epoch", "mid-epoch"])
def test_resume_is_bit_identical(tmp_path, stop_at):
    overrides = {"train.epochs": 3, "optim.schedule": "cosine", "model.options.dropout": 0.2, "data.val_split": 0.1}
    train(config(**overrides), out_dir=tmp_path / "straight", log=quiet)

    class Crash(Callback):
        def on_step_end(self, trainer, step):
            if stop_at == "mid-epoch" and step == 60:
                trainer.request_stop(signal.SIGINT)

        def on_epoch_end(self, trainer, record):
            if stop_at == "epoch" and record["epoch"] == 1:
                raise RuntimeError("simulated crash after the epoch-1 checkpoint")

    with pytest.raises((TrainingInterrupted, RuntimeError)):
        train(config(**overrides), out_dir=tmp_path / "crashed", log=quiet, callbacks=[Crash()])
    resumed = resume(tmp_path / "crashed", log=quiet)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    for which in ("last", "best"):
        a, b = weights(tmp_path / "straight", which), weights(tmp_path / "crashed", which)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_of_a_convolutional_model_is_bit_identical(tmp_path):
    overrides = {"train.epochs": 2, "data.batch_size": 64}
    train(config("lenet", **overrides), out_dir=tmp_path / "a", log=quiet)

    class Stop(Callback):
        def on_step_end(self, trainer, step):
            if step == 30:
                trainer.request_stop(signal.SIGTERM)

    with pytest.raises(TrainingInterrupted) as err:
        train(config("lenet", **overrides), out_dir=tmp_path / "b", log=quiet, callbacks=[Stop()])
    assert err.value.exit_code == 75 and "SIGTERM" in str(err.value) and "resume=True" in str(err.value)
    resume(tmp_path / "b", log=quiet)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    class Poison(Callback):
        def on_epoch_end(self, trainer, record):
            with torch.no_grad():
                next(trainer.raw_model.parameters()).fill_(math.nan)

    with pytest.raises(NonFiniteLossError, match=r"non-finite loss .* at epoch 2, batch 1 \(step 46\).*last checkpoint"):
        train(config(), out_dir=tmp_path / "run", log=quiet, callbacks=[Poison()])
    kept = weights(tmp_path / "run")
    assert all(torch.isfinite(v).all() for v in kept.values())
    assert load(tmp_path / "run" / "checkpoints" / "last.pt")["progress"]["epoch"] == 1


class InfGradients(Callback):
    """From step ``start`` on, ``count`` steps get infinite gradients."""

    def __init__(self, start, count):
        self.start, self.count, self.hooked = start, count, False

    def on_step_end(self, trainer, step):
        if step == self.start and not self.hooked:
            self.hooked = True
            param = next(trainer.raw_model.parameters())

            def hook(grad):
                if self.count > 0:
                    self.count -= 1
                    return grad * math.inf
                return grad

            param.register_hook(hook)


def test_inf_gradients_stop_the_run(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"non-finite .* at epoch 1, batch 6 \(step 6\)"):
        train(config(), out_dir=tmp_path / "run", log=quiet, callbacks=[InfGradients(start=5, count=1)])


def test_skip_nonfinite_tolerates_a_few_bad_steps_and_skips_them(tmp_path):
    messages = []
    result = train(config(**{"train.skip_nonfinite": 2, "train.sync_every": 1}), out_dir=tmp_path / "run",
                   log=messages.append, callbacks=[InfGradients(start=5, count=2)])  # fmt: skip
    assert len(result.history) == 2 and result.final["test_acc"] > 0.5
    assert sum("skipped (" in m for m in messages) == 2
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "run").values())


def test_one_bad_step_beyond_the_budget_stops_the_run(tmp_path):
    with pytest.raises(NonFiniteLossError, match="train.skip_nonfinite"):
        train(config(**{"train.skip_nonfinite": 1}), out_dir=tmp_path / "run", log=quiet,
              callbacks=[InfGradients(start=5, count=2)])  # fmt: skip


def test_early_stopping_watches_the_validation_split():
    overrides = {"train.epochs": 10, "train.patience": 2, "optim.lr": 1e-12, "data.val_split": 0.1}
    result = train(config(**overrides), write=False, log=quiet)
    assert len(result.history) == 3 and result.stop_reason.startswith("early stopping: val_acc")


def test_early_stopping_without_a_validation_split_is_refused():
    with pytest.raises(ConfigError, match="train.patience .* needs a validation split"):
        train(config(**{"train.patience": 2}), write=False, log=quiet)


def test_existing_run_folder_is_not_overwritten(tmp_path):
    train(config(**{"train.epochs": 1}), out_dir=tmp_path / "run", log=quiet)
    with pytest.raises(ConfigError, match="already holds a run; continue it with resume=True"):
        train(config(**{"train.epochs": 1}), out_dir=tmp_path / "run", log=quiet)


def test_resume_refuses_a_different_run_but_accepts_more_epochs(tmp_path):
    folder = tmp_path / "run"
    train(config(**{"train.epochs": 1}), out_dir=folder, log=quiet)
    with pytest.raises(ConfigError, match=r"cannot resume with optim.lr=0.5"):
        resume(folder, changes={"optim.lr": 0.5})
    longer = resume(folder, changes={"train.epochs": 2}, log=quiet)
    assert [r["epoch"] for r in longer.history] == [1, 2]
    done = resume(folder, log=quiet)  # already complete: nothing more to train
    assert len(done.history) == 2
