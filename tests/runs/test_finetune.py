"""Fine-tuning: pretrained backbone in, new Xavier head, faster head or frozen backbone, all offline."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
import torchvision
from torch import nn

from divekit.errors import CheckpointError, ConfigError
from divekit.models import create_model, list_models
from divekit.engine import checkpoint as ckpt
from divekit.runs import finetune
from divekit.runs import resolve_config, train
from divekit.runs.build import build_model, build_source

FAST = {"train.epochs": 1, "train.progress": False, "train.threads": 1, "task.options.train_subset": 128,
        "data.batch_size": 64}  # fmt: skip


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    """A torchvision resnet18 state_dict saved locally (random weights: nothing is downloaded)."""
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    reference = torchvision.models.resnet18(weights=None)  # `weights=`, never the deprecated pretrained=True
    torch.save(reference.state_dict(), path)
    return path, reference.state_dict()


def test_torchvision_resnet18_state_dict_fine_tunes_with_a_new_xavier_head(torchvision_file):
    path, reference = torchvision_file
    torch.manual_seed(0)
    model = create_model("resnet18-imagenet", num_classes=7)
    finetune.prepare_finetuning(model, weights=str(path), expected_name="resnet18-imagenet", num_classes=7,
                                freeze=False)  # fmt: skip
    state = model.state_dict()
    for key, value in reference.items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], value), key
    assert model.fc.weight.shape == (7, 512)
    bound = math.sqrt(6 / (512 + 7))  # Xavier-uniform
    assert model.fc.weight.abs().max() <= bound and model.fc.weight.abs().max() > 0.9 * bound


def test_replace_head_works_on_a_torchvision_model():
    net = torchvision.models.resnet18(weights=None, num_classes=1000)
    new = finetune.replace_head(net, 2)
    assert net.fc is new and net.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 2)


@pytest.mark.parametrize("name", list_models("classification"))
def test_every_classifier_head_is_found(name):
    with torch.device("meta"):
        model = create_model(name, num_classes=7)
    head = model.get_submodule(finetune.output_layer_name(model))
    assert getattr(head, "out_features", getattr(head, "out_channels", None)) == 7


def test_param_groups_speed_up_the_head():
    model = create_model("lenet-bn")
    groups = finetune.param_groups(model, lr=0.01, head_lr_mult=10)
    assert [g["name"] for g in groups] == ["backbone", "head"] and [g["lr"] for g in groups] == [0.01, 0.1]
    assert groups[1]["params"] == list(model[15].parameters())
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_frozen_backbone_keeps_weights_and_batch_norm_statistics():
    model = create_model("lenet-bn-torch")
    head = finetune.freeze_backbone(model)
    assert [p.requires_grad for p in model.parameters()].count(True) == len(head) == 2
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    model(torch.randn(8, 1, 28, 28) * 5 + 3).sum().backward()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" in k or "num_batches" in k)
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    assert finetune.param_groups(model, lr=0.1, head_lr_mult=10) == [
        {"params": head, "lr": 1.0, "name": "head"}]


def test_fine_tuning_a_run_folder_end_to_end(tmp_path):
    pre = train(resolve_config("lenet-bn", data="digits", overrides=FAST), out_dir=tmp_path / "pre")
    pretrained = ckpt.load_checkpoint(tmp_path / "pre" / "checkpoints" / "last.pt")["model"]  # no val split: no best
    config = resolve_config("lenet-bn", data="digits", overrides={
        **FAST, "model.weights": str(pre.out_dir), "model.head_lr_mult": 10.0, "optim.lr": 0.01})
    model = build_model(config, build_source(config).model_options())
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in pretrained.items() if not k.startswith("15."))
    assert not torch.equal(state["15.weight"], pretrained["15.weight"])
    result = train(config, out_dir=tmp_path / "ft")
    saved = ckpt.load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.pt")
    assert [g["lr"] for g in saved["optimizer"]["param_groups"]] == [0.01, pytest.approx(0.1)]
    # Resuming needs only the run's own checkpoint, not the pretrained weights.
    shutil.rmtree(tmp_path / "pre")
    from divekit.runs import resume

    again = resume(tmp_path / "ft", changes={"train.epochs": 2})
    assert again.final["epoch"] == 2 and result.final["epoch"] == 1


def test_wrong_weights_are_one_clear_error(tmp_path, torchvision_file):
    path, _ = torchvision_file
    config = resolve_config("lenet-bn", data="digits", overrides={**FAST, "model.weights": str(path)})
    with pytest.raises(CheckpointError, match=r"does not fit this model \(missing keys"):
        build_model(config, build_source(config).model_options())
    with pytest.raises(CheckpointError, match="no such run folder or file"):
        finetune.read_pretrained(tmp_path / "nowhere")
    torch.save({"epoch": 3}, tmp_path / "not-weights.pt")
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        finetune.read_pretrained(tmp_path / "not-weights.pt")
    torch.save({"fc.weight": torch.zeros(1), "bad": nn.Linear(1, 1)}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="refused to load"):
        finetune.read_pretrained(tmp_path / "pickled.pt")
    with pytest.raises(ConfigError, match="set model.weights"):
        resolve_config("lenet-bn", overrides={"model.freeze_backbone": True})


def test_from_pretrained_python_api(torchvision_file):
    path, reference = torchvision_file
    model = finetune.from_pretrained("resnet18-imagenet", path, num_classes=2, freeze=True)
    assert torch.equal(model.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 2)
