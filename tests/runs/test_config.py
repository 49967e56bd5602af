import json

import pytest

from divekit.errors import ConfigError
from divekit.runs import RunConfig, resolve_config


def test_unknown_key_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match="unknown option 'lr_rate'.*did you mean 'lr'"):
        RunConfig.from_dict({"optim": {"lr_rate": 0.1}})


def test_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="config.data.batch_size: expected int"):
        RunConfig.from_dict({"data": {"batch_size": "big"}})
    with pytest.raises(ConfigError, match="expected true or false"):
        RunConfig.from_dict({"train": {"deterministic": "yes"}})


def test_ints_are_accepted_for_floats_and_round_trip():
    config = RunConfig.from_dict({"optim": {"lr": 1}})
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("optim.lr", 0.0, "optim.lr must be > 0"),
        ("optim.lr", -1.0, "optim.lr must be > 0"),
        ("data.batch_size", 0, "data.batch_size must be at least 1"),
        ("train.epochs", 0, "train.epochs must be at least 1"),
        ("optim.momentum", 1.5, "optim.momentum"),
        ("optim.clip_grad", 0.0, "optim.clip_grad must be > 0"),
        ("train.precision", "8", "unknown train.precision"),
        ("optim.optimizer", "lbfgs", "unknown optim.optimizer"),
        ("data.val_split", 1.0, "data.val_split must be a fraction"),
        ("train.sync_every", 0, "train.sync_every must be at least 1"),
    ],
)
def test_impossible_hyperparameters_are_refused(key, value, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("mlp", overrides={key: value})


def test_layers_model_recipe_then_data_recipe_then_file_then_overrides(tmp_path):
    book = resolve_config("lenet", data="fashion-mnist")
    assert (book.optim.optimizer, book.optim.lr, book.data.batch_size, book.train.epochs, book.model.init) == (
        "sgd", 0.9, 256, 10, "xavier")  # fmt: skip
    small = resolve_config("lenet")  # the digits default adjusts the recipe for its small size
    assert (small.data.name, small.optim.optimizer, small.data.batch_size) == ("digits", "adam", 32)
    assert small.model.init == "xavier"
    file = tmp_path / "c.json"
    file.write_text(json.dumps({"optim": {"lr": 0.5}, "train": {"epochs": 3}}))
    mixed = resolve_config("lenet", config_file=file, overrides={"train.epochs": 7})
    assert (mixed.optim.lr, mixed.train.epochs) == (0.5, 7)


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config("mlp", config_file=tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        resolve_config("mlp", config_file=bad)
    bad.write_text(json.dumps({"optim": {"lr": 0.1, "typo": 1}}))
    with pytest.raises(ConfigError, match="unknown option 'typo'"):
        resolve_config("mlp", config_file=bad)


def test_bad_override_key():
    with pytest.raises(ConfigError, match="bad option 'lr'"):
        resolve_config("mlp", overrides={"lr": 0.1})
