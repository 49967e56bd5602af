"""The learning-rate finder: the model, its buffers, the optimiser and the RNG come back exactly; the rules pick sensibly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from divekit.engine.lr_find import find_lr, smooth, suggest
from divekit.errors import ConfigError
from divekit.runs.lr_find import lr_find
from divekit.tasks import Classification
from tests.runs.test_fit import batches, blobs


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_the_sweep_restores_weights_buffers_and_rng_exactly():
    X, y = blobs()
    model = net()
    model.eval()
    before = snapshot(model)
    torch.manual_seed(123)
    result = lr_find(model, batches(X, y), num_steps=30)
    after_rng = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after_rng, torch.rand(3))  # the sweep's dropout left the random stream where it was
    assert len(result.losses) >= 5 and result.lrs[0] == pytest.approx(1e-6)
    for key, value in model.state_dict().items():  # BatchNorm's running statistics and counters included
        assert torch.equal(value, before[key]), key
    assert model.training is False  # its mode too


def test_a_given_optimiser_gets_its_state_back():
    X, y = blobs()
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for X_b, y_b in batches(X, y)[:2]:  # some momentum to lose
        opt.zero_grad()
        nn.functional.cross_entropy(model(X_b), y_b).backward()
        opt.step()
    state = {k: v["momentum_buffer"].clone() for k, v in opt.state_dict()["state"].items()}
    weights = snapshot(model)
    find_lr(model, Classification(), batches(X, y), optimizer=opt, num_steps=20)
    assert opt.param_groups[0]["lr"] == 0.05
    assert all(torch.equal(opt.state_dict()["state"][k]["momentum_buffer"], v) for k, v in state.items())
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_the_learning_rate_grows_exponentially_and_the_sweep_stops_when_the_loss_diverges():
    X, y = blobs()
    result = lr_find(net(), batches(X, y), start_lr=1e-4, end_lr=1e4, num_steps=60)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:])]
    assert ratios == pytest.approx([(1e8) ** (1 / 59)] * len(ratios))
    assert len(result.lrs) < 60 and result.stop_reason.startswith("the loss diverged")
    assert result.suggestion is not None and result.lrs[0] < result.suggestion < result.lrs[-1]
    assert result.figure().axes[0].get_xscale() == "log"


def test_the_rules_on_a_known_curve():
    lrs = [10 ** (-4 + 0.1 * i) for i in range(50)]  # 1e-4 .. ~8
    # flat, then falling fastest around lr 1e-2, lowest at lr 1, then rising
    losses = [2.0 - 1.5 / (1 + math.exp(-4 * (math.log10(lr) + 2))) + max(0.0, math.log10(lr)) * 3 for lr in lrs]
    low = min(range(50), key=losses.__getitem__)
    pick, words, picks = suggest(lrs, losses, rule="min/10")
    assert pick == pytest.approx(lrs[low] / 10) and "a tenth" in words
    assert picks["steepest"] == pytest.approx(1e-2, rel=0.3)
    edge = max(i for i in range(50) if losses[i] <= losses[low] * 1.05)  # just past the lowest point
    assert picks["edge/10"] == pytest.approx(lrs[edge] / 10) and low <= edge < low + 3


def test_a_flat_loss_that_then_diverges_suggests_a_tenth_of_the_edge():
    """A sigmoid LeNet's loss stays flat in a short sweep: its lowest point is noise, the edge is not."""
    lrs = [10 ** (-3 + 0.05 * i) for i in range(100)]  # 1e-3 .. ~90
    noise = [0.01 * math.sin(7 * i) for i in range(100)]
    losses = [2.3 + n + (5.0 * (math.log10(lr) - 1.3) if lr > 20 else 0.0) for lr, n in zip(lrs, noise)]
    pick, words, picks = suggest(lrs, losses)
    assert 1.0 <= pick <= 2.0 and "5% of the lowest" in words  # the edge is at lr ~20
    assert picks["min/10"] < 0.5  # the noise's minimum, anywhere on the plateau
    assert suggest(lrs[:4], losses[:4])[0] is None


def test_smoothing_is_bias_corrected():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert math.isinf(smooth([1.0, float("nan")])[1])


@pytest.mark.parametrize("options, message", [({"start_lr": 1.0, "end_lr": 0.1}, "0 < start_lr < end_lr"),
                                              ({"num_steps": 2}, "num_steps must be at least 5"),
                                              ({"rule": "valley"}, "unknown lr-finder rule 'valley'")])  # fmt: skip
def test_bad_sweeps_are_one_clear_error(options, message):
    X, y = blobs()
    with pytest.raises(ConfigError, match=message):
        lr_find(net(), batches(X, y), **options)


def test_a_divekit_data_set_by_name():
    from divekit.models import create_model

    model = create_model("softmax", num_classes=10, in_channels=1)
    before = snapshot(model)
    result = lr_find(model, "digits", num_steps=15, config={"data.batch_size": 64})
    assert len(result.losses) == 15 and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
