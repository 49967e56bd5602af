"""Autoregressive regression on the sine and k-step-ahead forecasts (notes §6.1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from divekit.data.series import make_sine
from divekit.errors import ConfigError
from divekit.runs import resolve_config, train
from divekit.runs.build import build_source
from divekit.tasks.regression import forecast, k_step_predictions, lag_features, multistep_predictions


def test_lag_features_are_the_tau_previous_values():
    x = torch.arange(10.0)
    features, labels = lag_features(x, 4)
    assert features.shape == (6, 4) and labels.shape == (6, 1)
    assert features[0].tolist() == [0, 1, 2, 3] and labels[0].item() == 4
    assert features[-1].tolist() == [5, 6, 7, 8] and labels[-1].item() == 9


class _Mean(nn.Module):
    def forward(self, X):
        return X.mean(dim=1, keepdim=True)


def test_k_step_predictions_feed_predictions_back():
    x = torch.arange(12.0)
    features = k_step_predictions(_Mean(), x, tau=2, max_steps=3)
    assert features.shape == (12 - 2 - 3 + 1, 5)
    # row 0: observations 0, 1; then (0+1)/2 = .5; (1+.5)/2 = .75; (.5+.75)/2 = .625
    torch.testing.assert_close(features[0], torch.tensor([0.0, 1.0, 0.5, 0.75, 0.625]))
    one_step = _Mean()(lag_features(x, 2)[0]).reshape(-1)
    torch.testing.assert_close(features[:, 2], one_step[:8])  # the 1-step column is the ordinary prediction
    multi = multistep_predictions(_Mean(), x, tau=2, start=5)
    assert torch.equal(multi[:7], x[:7]) and multi[7].item() == pytest.approx((5 + 6) / 2)
    assert multi[8].item() == pytest.approx((6 + 5.5) / 2)
    with pytest.raises(ConfigError, match="too short"):
        k_step_predictions(_Mean(), x, tau=2, max_steps=20)


def test_training_the_ar_mlp_and_errors_accumulating_with_k(tmp_path):
    config = resolve_config("ar-mlp", overrides={"train.progress": False, "train.threads": 1})
    assert config.data.name == "sine" and config.optim.optimizer == "adam" and config.train.epochs == 5
    result = train(config, out_dir=tmp_path / "run")
    assert result.final["test_loss"] < 0.08  # the noise alone has variance 0.04
    from divekit.runs import load_run

    run = load_run(tmp_path / "run")
    out = forecast(run.model, make_sine(), tau=4, steps=[1, 4, 16, 64])
    errors = [out.errors[k] for k in (1, 4, 16, 64)]
    assert errors[0] < 0.08 and errors == sorted(errors) and errors[-1] > 3 * errors[0]
    assert out.multistep_error > errors[0]
    assert len(out.k_step[64][0]) == len(out.k_step[1][0]) == 1000 - 4 - 64 + 1


def test_tau_is_a_task_option():
    source = build_source(resolve_config("ar-mlp", overrides={"task.options.tau": 8}))
    assert source.model_options() == {"in_features": 8} and source.splits["train"][0].shape == (600, 8)
    with pytest.raises(ConfigError, match="task.options.tau"):
        build_source(resolve_config("ar-mlp", overrides={"task.options.tau": 0}))
