import pytest
import torch
from torch import nn

from divekit.errors import ConfigError
from divekit.models import create_model, get_model_entry, list_models, register_model, supported_options
from divekit.models import registry as registry_module


def test_builtin_models_are_listed():
    assert {"softmax", "mlp", "lenet"} <= set(list_models())
    assert set(list_models("classifier")) >= {"softmax", "mlp", "lenet"}
    assert list_models() == sorted(list_models())


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_model("lenet", family="classifier")(lambda: nn.Identity())


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown model family"):
        register_model("x-new", family="poetry")


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError, match="Did you mean 'lenet'"):
        create_model("lenet5")


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ConfigError, match="has no option 'depth'.*in_channels, num_classes"):
        create_model("lenet", depth=3)


def test_supported_options_filters_what_the_builder_takes():
    facts = {"num_classes": 3, "in_channels": 1, "vocab_size": 50}
    assert supported_options("lenet", facts) == {"num_classes": 3, "in_channels": 1}


def test_registry_entries_carry_recipes():
    entry = get_model_entry("lenet")
    assert entry.family == "classifier" and entry.input_size == (1, 28, 28)
    assert entry.recipe["optim.lr"] == 0.9 and entry.recipe["model.init"] == "xavier"


def test_registration_does_not_leak(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))

    @register_model("tiny-test", family="regression")
    def tiny(*, width: int = 2) -> nn.Module:
        """A tiny model."""
        return nn.Linear(width, 1)

    assert get_model_entry("tiny-test").description == "A tiny model."
    assert create_model("tiny-test", width=3).in_features == 3
