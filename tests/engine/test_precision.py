"""Each speed option reaches the fp32 accuracy on the same task, within a small tolerance."""

import pytest

from divekit.runs import resolve_config, train


def accuracy(model: str = "mlp", **overrides) -> float:
    config = resolve_config(model, overrides={"train.epochs": 3, "train.progress": False, **overrides})
    return train(config, write=False, log=lambda message: None).final["test_acc"]


@pytest.fixture(scope="module")
def fp32() -> float:
    return accuracy()


@pytest.mark.parametrize("precision", ["bf16", "16"])
def test_reduced_precision_reaches_fp32_accuracy(fp32, precision):
    assert fp32 > 0.9
    assert accuracy(**{"train.precision": precision}) == pytest.approx(fp32, abs=0.03)


def test_compiled_model_reaches_fp32_accuracy(fp32):
    assert accuracy(**{"train.compile": True}) == pytest.approx(fp32, abs=0.01)


def test_channels_last_on_and_off_agree():
    on = accuracy("lenet", **{"train.channels_last": True, "train.epochs": 2})
    off = accuracy("lenet", **{"train.channels_last": False, "train.epochs": 2})
    assert on == pytest.approx(off, abs=0.02)
