"""TensorBoard logging: the events, read back with TensorBoard's own reader, hold exactly what metrics.json holds."""

import json

import pytest
import torch

from divekit.engine.tensorboard import TensorBoardLogger, log_folder, metric_tag
from divekit.errors import ConfigError
from divekit.runs import fit, resolve_config, train

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

QUIET = {"train.progress": False}


def quiet(message):
    pass


def events(folder):
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator, tag):
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def test_metric_tags_group_each_metric_across_splits():
    assert metric_tag("val_acc") == "acc/val"
    assert metric_tag("train_examples_per_s") == "examples_per_s/train"
    assert metric_tag("lr") == "run/lr" and metric_tag("epoch_time_s") == "run/epoch_time_s"


def test_every_epoch_value_equals_metrics_json(tmp_path):
    config = resolve_config("lenet", overrides={**QUIET, "train.epochs": 2, "data.val_split": 0.1,
                                                 "train.sync_every": 5, "train.tensorboard": True})  # fmt: skip
    result = train(config, out_dir=tmp_path / "run", log=quiet)
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    acc = events(tmp_path / "run" / "tensorboard")
    numbers = [k for k in history[0] if k != "epoch"]
    assert {"train_loss", "val_acc", "test_acc", "lr", "train_examples_per_s"} <= set(numbers)
    for key in numbers:
        logged = scalars(acc, metric_tag(key))
        assert [s for s, _ in logged] == [r["epoch"] for r in history], key
        # event files store float32
        assert [v for _, v in logged] == pytest.approx([r[key] for r in history], rel=1e-6, abs=1e-7), key
    steps = [s for s, _ in scalars(acc, "step/train_loss")]
    epoch_ends = {steps[-1] // 2, steps[-1]}  # the last point is the second epoch's end
    assert steps and all(s % 5 == 0 or s in epoch_ends for s in steps)  # at syncs and epoch ends, never per step
    final = scalars(acc, "hparam/final_test_acc")
    assert final[0][1] == pytest.approx(result.final["test_acc"], rel=1e-6)
    assert scalars(acc, "hparam/best_val_acc")[0][1] == pytest.approx(result.best["val_acc"], rel=1e-6)
    tags = acc.Tags()
    assert "samples/images" in tags["images"] and tags["graph"]
    text = acc.Tensors("samples/text/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert text.count("pred ") == 8 and "/ true " in text


def test_a_language_model_logs_generated_text(tmp_path):
    config = resolve_config("gru-lm", overrides={**QUIET, "train.epochs": 1, "data.name": "pydoc",
                                                 "task.options.max_tokens": 8000,
                                                 "data.val_split": 0.1, "model.options.num_hiddens": 16,
                                                 "train.tensorboard": str(tmp_path / "tb")})  # fmt: skip
    train(config, out_dir=tmp_path / "run", log=quiet)
    acc = events(tmp_path / "tb")
    text = acc.Tensors("samples/text/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert text.count(" | ") == 4  # prompt | continuation, for each of 4 held-out sequences


def test_fit_takes_the_setting_and_a_log_folder(tmp_path):
    X, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    batches = [(X[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    model = torch.nn.Linear(4, 3)
    fit(model, batches, batches, epochs=2, config={"train.tensorboard": str(tmp_path / "tb"), **QUIET}, log=quiet)
    acc = events(tmp_path / "tb")
    assert [s for s, _ in scalars(acc, "loss/val")] == [1, 2]


def test_true_without_a_run_folder_is_one_clear_error():
    with pytest.raises(ConfigError, match="train.tensorboard=True"):
        log_folder(True, None)
    model = torch.nn.Linear(4, 3)
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))]
    with pytest.raises(ConfigError, match="set train.tensorboard to a log folder"):
        fit(model, batches, epochs=1, config={"train.tensorboard": True, **QUIET}, log=quiet)


def test_an_empty_folder_name_is_refused():
    with pytest.raises(ConfigError, match="train.tensorboard is an empty"):
        resolve_config("mlp", overrides={"train.tensorboard": " "})


def test_a_resumed_run_drops_the_events_after_its_checkpoint(tmp_path):
    from divekit.runs import resume

    config = resolve_config("mlp", overrides={**QUIET, "train.epochs": 1, "train.tensorboard": True})
    train(config, out_dir=tmp_path / "run", log=quiet)
    resume(tmp_path / "run", changes={"train.epochs": 2}, log=quiet)
    acc = events(tmp_path / "run" / "tensorboard")
    assert [s for s, _ in scalars(acc, "loss/train")] == [1, 2]


def test_a_model_that_does_not_trace_still_logs(tmp_path):
    class Untraceable(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, X):
            if X.sum() > 1e9:  # data-dependent control flow: strict tracing refuses nothing, so raise instead
                return X
            raise_in_trace = torch.jit.is_tracing()
            if raise_in_trace:
                raise RuntimeError("cannot trace this")
            return self.linear(X)

    lines = []
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))]
    fit(Untraceable(), batches, batches, epochs=1, config={"train.tensorboard": str(tmp_path / "tb"), **QUIET},
        log=lines.append)  # fmt: skip
    assert any(line.startswith("tensorboard: no model graph (RuntimeError: cannot trace this") for line in lines)
    assert scalars(events(tmp_path / "tb"), "loss/val")


def test_the_logger_can_be_given_as_a_callback_with_its_own_samples(tmp_path):
    from divekit.engine.tensorboard import Samples

    shown = []

    def samples(model, batch):
        shown.append(batch[0].shape[0])
        return Samples(texts=["hello"])

    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,)))]
    logger = TensorBoardLogger(tmp_path / "tb", samples=samples, hparams={"note": "mine"}, graph=False)
    fit(torch.nn.Linear(4, 3), batches, batches, epochs=2, callbacks=[logger], config=QUIET, log=quiet)
    assert shown == [8, 8]
    acc = events(tmp_path / "tb")
    assert acc.Tensors("samples/text/text_summary")[-1].tensor_proto.string_val[0].decode() == "- hello"
