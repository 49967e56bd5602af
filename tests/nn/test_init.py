import math

import pytest
import torch
from torch import nn

from divekit.errors import ConfigError
from divekit.nn import apply_init, init_constant, init_normal, init_xavier


def net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 1))


def test_normal_init_has_std_001_and_zero_bias():
    n = net().apply(init_normal)
    assert abs(n[0].weight.std().item() - 0.01) < 0.001
    assert abs(n[0].weight.mean().item()) < 0.001
    assert torch.count_nonzero(n[0].bias) == 0 and torch.count_nonzero(n[2].bias) == 0


def test_xavier_uniform_respects_its_bound():
    n = net().apply(init_xavier)
    bound = math.sqrt(6 / (400 + 300))
    w = n[0].weight
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert abs(w.var().item() - bound**2 / 3) < 0.1 * bound**2 / 3


def test_constant_init():
    n = net().apply(init_constant)
    assert torch.all(n[0].weight == 1) and torch.all(n[0].bias == 0)
    n = apply_init(net(), "constant", value=42.0)
    assert torch.all(n[2].weight == 42)


def test_init_on_one_chosen_layer_leaves_the_others():
    n = net()
    untouched = n[2].weight.detach().clone()
    n[0].apply(init_constant)
    assert torch.all(n[0].weight == 1)
    assert torch.equal(n[2].weight, untouched)


def test_init_applies_to_convolutions_and_skips_other_layers():
    n = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    n(torch.rand(1, 1, 5, 5))
    apply_init(n, "constant", value=0.5)
    assert torch.all(n[0].weight == 0.5) and torch.all(n[3].weight == 0.5)
    assert torch.all(n[1].weight == 1)  # batch norm's scale keeps its own init


def test_unknown_initialiser_is_refused_with_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'xavier'|Did you mean 'xavier'"):
        apply_init(net(), "xavir")


def test_default_keeps_pytorch_init():
    n = net()
    before = n[0].weight.detach().clone()
    assert torch.equal(apply_init(n, "default")[0].weight, before)
