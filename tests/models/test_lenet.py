import torch
from torch import nn

from divekit.models import create_model


def test_lenet_layer_shapes_follow_the_notes():
    net = create_model("lenet")
    X = torch.rand(1, 1, 28, 28)
    shapes = []
    for layer in net:
        X = layer(X)
        shapes.append((type(layer).__name__, tuple(X.shape)))
    assert shapes == [
        ("Conv2d", (1, 6, 28, 28)), ("Sigmoid", (1, 6, 28, 28)), ("AvgPool2d", (1, 6, 14, 14)),
        ("Conv2d", (1, 16, 10, 10)), ("Sigmoid", (1, 16, 10, 10)), ("AvgPool2d", (1, 16, 5, 5)),
        ("Flatten", (1, 400)), ("Linear", (1, 120)), ("Sigmoid", (1, 120)),
        ("Linear", (1, 84)), ("Sigmoid", (1, 84)), ("Linear", (1, 10)),
    ]  # fmt: skip


def test_lenet_architecture_details():
    net = create_model("lenet")
    conv1, conv2 = net[0], net[3]
    assert conv1.kernel_size == conv2.kernel_size == (5, 5)
    assert conv1.padding == (2, 2) and conv2.padding == (0, 0)
    assert all(isinstance(net[i], nn.AvgPool2d) for i in (2, 5))
    assert sum(p.numel() for p in net.parameters()) == 61_706


def test_lenet_for_other_channels_and_classes():
    net = create_model("lenet", in_channels=3, num_classes=4)
    assert net(torch.rand(2, 3, 28, 28)).shape == (2, 4)


def test_baselines_shapes_and_counts():
    softmax, mlp = create_model("softmax"), create_model("mlp")
    X = torch.rand(5, 1, 28, 28)
    assert softmax(X).shape == mlp(X).shape == (5, 10)
    assert sum(p.numel() for p in softmax.parameters()) == 784 * 10 + 10
    assert sum(p.numel() for p in mlp.parameters()) == 784 * 256 + 256 + 256 * 10 + 10
