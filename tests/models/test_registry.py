import pytest
import torch
from torch import nn

from divekit.errors import ConfigError
from divekit.models import MODELS, create_model, get_model_entry, list_models, register_model, supported_options


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_modules", dict(MODELS._modules))


def test_builtin_models_are_listed():
    assert {"softmax", "mlp", "lenet"} <= set(list_models())
    assert set(list_models("classification")) >= {"softmax", "mlp", "lenet"}
    assert list_models() == sorted(list_models())


def test_every_name_has_its_own_builder_function():
    """One decorated function per name, so `grep "def resnet18_imagenet"` finds the builder of resnet18-imagenet."""
    for name in list_models():
        assert get_model_entry(name).builder.__name__ == name.replace("-", "_"), name


def test_another_module_cannot_take_a_name(scratch_registry):
    def impostor() -> nn.Module:
        return nn.Identity()

    impostor.__module__ = "somebody.else"
    with pytest.raises(ValueError, match="'lenet' is already registered by divekit.models.lenet; somebody.else"):
        register_model("lenet", task="classification")(impostor)


def test_registering_again_from_the_same_module_replaces_the_entry(scratch_registry):
    """A notebook cell (module __main__) run twice re-registers its model."""
    for width in (2, 3):
        def cell(*, out: int = width) -> nn.Module:
            return nn.Linear(4, out)

        cell.__module__ = "__main__"
        register_model("my-mlp", task="regression")(cell)
    assert create_model("my-mlp").out_features == 3
    assert MODELS.module_of("my-mlp") == "__main__"


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="unknown task 'poetry'"):
        register_model("x-new", task="poetry")


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ConfigError, match="Did you mean 'lenet'"):
        create_model("lenet5")


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ConfigError, match="has no option 'depth'.*in_channels, num_classes"):
        create_model("lenet", depth=3)


def test_a_value_the_builder_refuses_is_one_config_error():
    with pytest.raises(ConfigError, match="model 'lenet-bn': LeNet-BN needs images of at least 12x12"):
        create_model("lenet-bn", image_size=8)


def test_supported_options_filters_what_the_builder_takes():
    facts = {"num_classes": 3, "in_channels": 1, "vocab_size": 50}
    assert supported_options("lenet", facts) == {"num_classes": 3, "in_channels": 1}


def test_registry_entries_carry_recipes():
    entry = get_model_entry("lenet")
    assert entry.task == "classification" and entry.input_size == (1, 28, 28)
    assert entry.recipe["optim.lr"] == 0.9 and entry.recipe["model.init"] == "xavier"


def test_registration_does_not_leak(scratch_registry):
    @register_model("tiny-test", task="regression")
    def tiny(*, width: int = 2) -> nn.Module:
        """A tiny model."""
        return nn.Linear(width, 1)

    assert get_model_entry("tiny-test").description == "A tiny model."
    assert create_model("tiny-test", width=3).in_features == 3
    assert torch.is_tensor(create_model("tiny-test")(torch.zeros(1, 2)))
