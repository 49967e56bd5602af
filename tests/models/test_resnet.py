"""The ImageNet-layout ResNet is torchvision's network; the book layout is its own."""

from __future__ import annotations

import pytest
import torch
import torchvision

from divekit.models import create_model
from divekit.models.resnet import Residual


def test_torchvision_weights_load_and_give_the_same_outputs():
    reference = torchvision.models.resnet18(weights=None).eval()
    ours = create_model("resnet18-imagenet").eval()
    assert list(ours.state_dict()) == list(reference.state_dict())  # same keys, same order
    ours.load_state_dict(reference.state_dict())  # strict
    X = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(X), reference(X))
    reference.load_state_dict(ours.state_dict())  # and back


def test_imagenet_resnet18_has_torchvisions_parameter_count():
    assert sum(p.numel() for p in create_model("resnet18-imagenet").parameters()) == 11_689_512


def test_book_layout_has_conv_biases_and_a_plain_shortcut():
    net = create_model("resnet18")
    assert net.conv1.bias is not None and net.layer2[0].conv1.bias is not None
    assert len(net.layer2[0].downsample) == 1 and net.layer1[0].downsample is None


@pytest.mark.parametrize(("stride", "use_1x1conv", "out_shape"), [(1, False, (2, 8, 6, 6)), (2, True, (2, 16, 3, 3))])
def test_residual_block_shapes(stride, use_1x1conv, out_shape):
    block = Residual(8, out_shape[1], use_1x1conv=use_1x1conv, stride=stride)
    assert block(torch.randn(2, 8, 6, 6)).shape == out_shape


def test_residual_with_zero_branch_is_the_identity_after_relu():
    block = Residual(4, 4).eval()
    torch.nn.init.zeros_(block.bn2.weight)
    torch.nn.init.zeros_(block.bn2.bias)
    X = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(block(X), torch.relu(X))


def test_forward_is_features_then_head():
    net = create_model("resnet18").eval()
    X = torch.randn(2, 1, 64, 64)
    features = net.forward_features(X)
    assert features.shape == (2, 512, 2, 2)
    torch.testing.assert_close(net.forward_head(features), net(X))
