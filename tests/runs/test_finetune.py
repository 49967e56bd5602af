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


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrained") / "run"
    train(resolve_config("lenet-bn", data="digits", overrides=FAST), out_dir=folder, log=lambda message: None)
    return folder


def test_an_exported_safetensors_file_is_a_weights_file(lenet_run, tmp_path):
    from divekit.runs.export import export_weights

    exported = export_weights(lenet_run, tmp_path / "lenet.safetensors")
    pretrained = ckpt.load_checkpoint(lenet_run / "checkpoints" / "last.pt")["model"]  # no val split: no best
    for path in (exported, shutil.copyfile(exported, tmp_path / "renamed.pt")):  # told from content, not name
        weights, name = finetune.read_pretrained(path)
        assert name is None and all(torch.equal(weights[k], v) for k, v in pretrained.items())


def _safetensors_bytes(tmp_path) -> bytes:
    from safetensors.torch import save_file

    save_file({"0.weight": torch.zeros(6, 1, 5, 5)}, tmp_path / "w.safetensors")
    return (tmp_path / "w.safetensors").read_bytes()


CORRUPT_WEIGHTS = {
    "safetensors with a huge declared header": (
        lambda b: (10**15).to_bytes(8, "little") + b[8:], "header claims 1,000,000,000,000,000 bytes"),
    "safetensors cut short": (lambda b: b[:-10], "corrupt safetensors file"),
    "safetensors with a broken header": (lambda b: b[:9] + b"\x00" * (len(b) - 9), "corrupt safetensors file"),
    "a truncated zip checkpoint": (lambda b: _zip_bytes()[:-100], "zip archive is truncated or damaged"),
    "a zip checkpoint cut to its start": (lambda b: _zip_bytes()[:64], "zip archive is truncated or damaged"),
    "a Python pickle": (lambda b: __import__("pickle").dumps({"w": 1}), "a Python pickle, not PyTorch's format"),
    "text": (lambda b: b"these are not weights\n", "looks like a text file"),
    "an empty file": (lambda b: b"", "is empty"),
}


def _zip_bytes() -> bytes:
    import io as stdlib_io

    buffer = stdlib_io.BytesIO()
    torch.save({"0.weight": torch.zeros(6, 1, 5, 5)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["weights.safetensors", "best.pt"])
@pytest.mark.parametrize("case", list(CORRUPT_WEIGHTS))
def test_every_weights_parse_error_is_one_line_naming_the_problem(tmp_path, name, case):
    """Before: a SafetensorError traceback, or the same bytes as best.pt reported as 'pickled objects'."""
    corrupt, message = CORRUPT_WEIGHTS[case]
    path = tmp_path / name
    path.write_bytes(corrupt(_safetensors_bytes(tmp_path)))
    with pytest.raises(CheckpointError) as err:
        finetune.read_pretrained(path)
    text = str(err.value)
    assert message in text and "\n" not in text and "pickled objects" not in text, text


def test_a_corrupt_best_pt_in_a_run_folder_names_the_file(lenet_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(lenet_run, copy)
    (copy / "checkpoints" / "best.pt").write_bytes(_safetensors_bytes(tmp_path)[:-10])
    with pytest.raises(CheckpointError, match=r"best\.pt: corrupt safetensors file"):
        finetune.read_pretrained(copy)


@pytest.mark.parametrize("content, message", [
    ({"format": "divekit-checkpoint", "version": 1}, "it holds nothing usable"),
    ({"model": {"w": torch.ones(1)}, "epoch": 3}, "'model' (dict), 'epoch' (int)"),
    ([torch.ones(1)], "it holds a list"),
    (torch.ones(3), "it holds a Tensor"),
    ({}, "an empty mapping"),
])  # fmt: skip
def test_a_file_of_plain_data_that_is_not_weights_says_what_it_holds(tmp_path, content, message):
    torch.save(content, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match="holds no state_dict") as err:
        finetune.read_pretrained(tmp_path / "w.pt")
    assert message in str(err.value)


def test_corrupt_weights_through_the_cli_are_one_line_and_leave_no_run(tmp_path, capsys):
    from divekit.cli import main

    (tmp_path / "w.safetensors").write_bytes((10**15).to_bytes(8, "little") + _safetensors_bytes(tmp_path)[8:])
    code = main(["train", "lenet-bn", "--data", "digits", "--weights", str(tmp_path / "w.safetensors"),
                 "--epochs", "1", "--no-progress", "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("divekit: error:") and err.count("\n") == 1 and "header claims" in err
    assert not (tmp_path / "run").exists()
