import torch
from safetensors import safe_open
from safetensors.torch import load_file

from divekit.cli import main
from divekit.io import load
from divekit.runs import load_run, resolve_config, train


def test_safetensors_and_state_dict_exports_give_the_same_model(tmp_path, capsys):
    folder = tmp_path / "run"
    train(resolve_config("lenet", overrides={"train.epochs": 1, "train.progress": False}), out_dir=folder,
          log=lambda message: None)  # fmt: skip
    assert main(["export", str(folder), "--out", str(tmp_path / "m.safetensors")]) == 0
    assert main(["export", str(folder), "--out", str(tmp_path / "m.pt"), "--format", "pt"]) == 0
    run = load_run(folder)
    tensors = load_file(tmp_path / "m.safetensors")
    plain = load(tmp_path / "m.pt")
    X = torch.rand(3, 1, 28, 28)
    for state in (tensors, plain):
        model = load_run(folder).model
        model.load_state_dict(state)
        assert torch.equal(model(X), run.model(X))
    with safe_open(tmp_path / "m.safetensors", framework="pt") as handle:
        assert handle.metadata()["divekit_model"] == "lenet"
