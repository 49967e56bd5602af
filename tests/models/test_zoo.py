"""Registry-driven tests over every classifier: shapes, gradients, state_dicts, parameter counts."""

from __future__ import annotations

import pytest
import torch

from divekit.errors import ConfigError
from divekit.models import create_model, get_model_entry, list_models

CLASSIFIERS = list_models("classification")
# Input sides each model is checked at (small, so the suite stays fast); default: its registered size.
SIZES = {
    "alexnet": (67, 96), "nin": (67, 80), "vgg11": (32, 64), "vgg11-narrow": (32, 64),
    "resnet18": (32, 48), "resnet18-imagenet": (32, 40), "googlenet": (32, 48), "densenet": (32, 48),
    "lenet": (28,), "lenet-bn": (28, 36), "lenet-bn-torch": (28, 36), "mlp": (28,), "softmax": (28,),
}  # fmt: skip
# Parameters at the registered input size with the builder's defaults (docs/cnn.md lists them).
PARAMETER_COUNTS = {
    "lenet-bn": 44_878, "lenet-bn-torch": 44_878, "alexnet": 46_764_746, "vgg11": 128_806_154,
    "vgg11-narrow": 43_093_322, "nin": 1_992_166, "resnet18": 11_178_378, "resnet18-imagenet": 11_689_512,
    "googlenet": 5_977_530, "densenet": 758_226,
}  # fmt: skip


def build(name: str, size: int, **options) -> torch.nn.Module:
    accepted = get_model_entry(name).options()
    if "image_size" in accepted:
        options["image_size"] = size
    return create_model(name, **options)


def sizes(name: str) -> tuple[int, ...]:
    return SIZES.get(name) or (get_model_entry(name).input_size[-1],)


def image(name: str, size: int, batch: int) -> torch.Tensor:
    """A random batch with the model's default number of channels."""
    return torch.randn(batch, get_model_entry(name).input_size[0], size, size)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_output_shape_for_several_sizes_channels_and_classes(name):
    for size in sizes(name):
        for channels, classes in ((1, 10), (3, 7)):
            torch.manual_seed(0)
            net = build(name, size, in_channels=channels, num_classes=classes).eval()
            with torch.no_grad():
                assert net(torch.randn(2, channels, size, size)).shape == (2, classes), (name, size, channels)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_gradients_reach_the_input_and_every_parameter(name):
    size = sizes(name)[0]
    net = build(name, size, num_classes=5).train()
    X = image(name, size, 4).requires_grad_()
    net(X).square().sum().backward()
    assert X.grad is not None and torch.isfinite(X.grad).all() and X.grad.abs().sum() > 0
    silent = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not silent, f"{name}: no gradient reached {silent[:3]}"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_state_dict_round_trip(name):
    size = sizes(name)[0]
    torch.manual_seed(1)
    source = build(name, size).train()
    source(image(name, size, 4))  # move the batch-norm statistics away from their defaults
    torch.manual_seed(2)
    target = build(name, size)
    target.load_state_dict(source.state_dict())
    X = image(name, size, 3)
    with torch.no_grad():
        torch.testing.assert_close(target.eval()(X), source.eval()(X))


@pytest.mark.parametrize("name", sorted(PARAMETER_COUNTS))
def test_documented_parameter_counts(name):
    with torch.device("meta"):  # shapes only: no memory for VGG's 129M parameters
        net = create_model(name)
    assert sum(p.numel() for p in net.parameters()) == PARAMETER_COUNTS[name]


def test_every_cnn_has_a_documented_count():
    cnns = {n for n in CLASSIFIERS if n not in ("lenet", "mlp", "softmax")}
    assert cnns <= set(PARAMETER_COUNTS)


@pytest.mark.parametrize(("name", "size"), [("alexnet", 64), ("vgg11-narrow", 16), ("nin", 66), ("densenet", 28)])
def test_too_small_an_image_is_one_clear_error(name, size):
    with pytest.raises(ConfigError, match=f"model '{name}'.*too small"):
        build(name, size)
