"""The autoregressive MLP of notes §6.1."""

from __future__ import annotations

import pytest
import torch

from divekit.errors import ConfigError
from divekit.models import create_model, get_model_entry


def test_ar_mlp_maps_tau_values_to_one_prediction():
    model = create_model("ar-mlp", in_features=4)
    assert model(torch.randn(16, 4)).shape == (16, 1)
    assert get_model_entry("ar-mlp").task == "regression"
    with pytest.raises(ConfigError):
        create_model("ar-mlp", in_features=0)
