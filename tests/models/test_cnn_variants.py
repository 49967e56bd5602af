"""Variants are data: LeNet-BN's two BN kinds, VGG's block tables, the book's layer-by-layer shapes."""

from __future__ import annotations

import torch
from torch import nn

from divekit.models import create_model, get_model_entry
from divekit.models.vgg import VGG_ARCHS, narrow, vgg_block
from divekit.nn.norm import BatchNorm


def test_lenet_bn_variants_share_state_dicts_and_outputs():
    scratch, concise = create_model("lenet-bn"), create_model("lenet-bn-torch")
    assert isinstance(scratch[1], BatchNorm) and isinstance(concise[1], nn.BatchNorm2d)
    assert isinstance(scratch[10], BatchNorm) and isinstance(concise[10], nn.BatchNorm1d)
    scratch = scratch.double()
    scratch(torch.randn(8, 1, 28, 28, dtype=torch.float64))  # non-default running statistics
    concise = concise.double()
    concise.load_state_dict(scratch.state_dict())
    X = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    for mode in (True, False):
        scratch.train(mode), concise.train(mode)
        torch.testing.assert_close(scratch(X), concise(X))
    scratch.load_state_dict(concise.state_dict())


def test_vgg_block_halves_and_sets_channels():
    block = vgg_block(2, 3, 16)
    assert sum(isinstance(m, nn.Conv2d) for m in block) == 2
    assert block(torch.randn(1, 3, 8, 8)).shape == (1, 16, 4, 4)


def test_vgg11_blocks_print_the_books_shapes():
    net = create_model("vgg11")
    X, shapes = torch.randn(1, 1, 224, 224), []
    with torch.no_grad():
        for block in list(net)[:5]:
            X = block(X)
            shapes.append(tuple(X.shape[1:]))
    assert shapes == [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7)]


def test_narrow_vgg_divides_every_block_by_four():
    assert narrow(VGG_ARCHS["vgg11"]) == ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))
    convs = [m for m in create_model("vgg11-narrow", image_size=32).modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64, 128, 128, 128, 128]


def test_alexnet_layer_shapes_follow_the_notes():
    net = create_model("alexnet")
    X, shapes = torch.randn(1, 1, 224, 224), {}
    with torch.no_grad():
        for index, layer in enumerate(net):
            X = layer(X)
            shapes[index] = tuple(X.shape[1:])
    assert shapes[1] == (96, 54, 54) and shapes[2] == (96, 26, 26) and shapes[5] == (256, 12, 12)
    assert shapes[12] == (256, 5, 5) and shapes[13] == (6400,)


def test_nin_has_no_linear_layer_and_ends_in_global_average_pooling():
    net = create_model("nin", image_size=96)
    assert not any(isinstance(m, nn.Linear) for m in net.modules())
    assert isinstance(net[-2], nn.AdaptiveAvgPool2d)


def test_recipes_are_the_books_fashion_mnist_settings():
    from divekit.runs import resolve_config

    book = {"lenet-bn": (1.0, 256, 28), "alexnet": (0.01, 128, 224), "vgg11-narrow": (0.05, 128, 224),
            "nin": (0.1, 128, 224), "resnet18": (0.05, 256, 96), "googlenet": (0.1, 128, 96),
            "densenet": (0.1, 256, 96)}  # fmt: skip
    for name, (lr, batch, size) in book.items():
        config = resolve_config(name, data="fashion-mnist")
        assert (config.optim.lr, config.data.batch_size, config.train.epochs) == (lr, batch, 10), name
        assert config.model.init == "xavier" and config.optim.optimizer == "sgd"
        assert get_model_entry(name).input_size[-1] == size
