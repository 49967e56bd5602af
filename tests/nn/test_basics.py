import torch
from torch import nn

from divekit.nn import MLP, MyLinear, MySequential


def test_mlp_maps_features_to_outputs():
    net = MLP(20, 256, 10)
    assert net(torch.rand(2, 20)).shape == (2, 10)


def test_mysequential_matches_nn_sequential():
    layers = [nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10)]
    mine, torchs = MySequential(*layers), nn.Sequential(*layers)
    X = torch.rand(3, 20)
    assert torch.equal(mine(X), torchs(X))
    assert list(mine.state_dict()) == list(torchs.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(mine) == 3 and mine[2] is layers[2]


def test_mysequential_keeps_the_order_given():
    double, add_one = nn.Linear(1, 1, bias=False), nn.Linear(1, 1)
    nn.init.constant_(double.weight, 2.0)
    nn.init.constant_(add_one.weight, 1.0)
    nn.init.constant_(add_one.bias, 1.0)
    X = torch.tensor([[3.0]])
    assert MySequential(double, add_one)(X).item() == 7.0  # (3 * 2) + 1
    assert MySequential(add_one, double)(X).item() == 8.0  # (3 + 1) * 2


def test_mylinear_computes_relu_of_affine_map():
    layer = MyLinear(5, 3)
    X = torch.randn(4, 5)
    expected = torch.relu(X @ layer.weight + layer.bias)
    assert torch.allclose(layer(X), expected)
    plain = MyLinear(5, 3, relu=False)
    assert torch.allclose(plain(X), X @ plain.weight + plain.bias)


def test_mylinear_trains_unlike_the_notes_version():
    torch.manual_seed(1)
    layer = MyLinear(5, 3, relu=False)
    before = layer.weight.detach().clone()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(torch.randn(8, 5)).pow(2).sum()
    loss.backward()
    optimizer.step()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert not torch.equal(layer.weight, before)


def test_reading_data_in_forward_cuts_the_gradient():
    """Why ours differs from the notes: `.data` detaches, so no gradient reaches the weight."""
    weight = nn.Parameter(torch.randn(5, 3))
    out = torch.randn(2, 5) @ weight.data
    assert not out.requires_grad
