"""The embedded noisy sine (notes §6.1)."""

from __future__ import annotations

import torch

from divekit.data import load_dataset
from divekit.data.series import make_sine


def test_sine_is_fixed_noisy_and_split_at_600():
    data = load_dataset("sine")
    assert data.task == "regression" and data.values.shape == (1000,) and data.n_train == 600
    assert torch.equal(data.time, torch.arange(1, 1001, dtype=torch.float32))
    assert torch.equal(data.values, load_dataset("sine").values)  # same series every time
    noise = data.values - torch.sin(0.01 * data.time)
    assert abs(float(noise.std()) - 0.2) < 0.02 and abs(float(noise.mean())) < 0.03


def test_make_sine_options():
    quiet = make_sine(length=50, noise=0.0)
    torch.testing.assert_close(quiet.values, torch.sin(0.01 * torch.arange(1, 51, dtype=torch.float32)))
