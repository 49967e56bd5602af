"""``model.weights=torchvision``: torchvision's ResNet-18 file from the hub cache or a checked download, fine-tuned
as notes §5 does (new Xavier head), with ImageNet's input convention (gray repeated to RGB, normalised).

torchvision's real ImageNet weights cannot be downloaded here; the tests use files of torchvision's layout
and name made from ``torchvision.models.resnet18(weights=None)``.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from divekit.engine import checkpoint as ckpt
from divekit.errors import ConfigError, DataError
from divekit.runs import finetune, load_run, resolve_config, train
from divekit.runs.build import build_model, build_source

FILE = "resnet18-f37072fd.pth"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A temporary $TORCH_HOME whose hub cache holds a torchvision-layout resnet18 file; yields its state_dict."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, folder / FILE)
    return state


def config(**overrides):
    return resolve_config("resnet18-imagenet", data="digits", overrides={
        "model.weights": "torchvision", "task.options.resize": 32, "task.options.train_subset": 64,
        "data.batch_size": 32, "train.epochs": 1, "train.progress": False, **overrides})  # fmt: skip


def test_the_hub_cache_is_torch_homes(hub, tmp_path):
    assert finetune.hub_checkpoints() == tmp_path / "torch" / "hub" / "checkpoints"


def test_gray_images_fine_tune_exactly_as_torchvision_on_repeated_normalised_input(hub, capsys):
    cfg = config()
    model = build_model(cfg, build_source(cfg).model_options()).eval()
    assert model.conv1.weight.shape == (64, 3, 7, 7)  # ImageNet's 3 input channels kept for 1-channel data
    report = capsys.readouterr().err
    assert "loaded 120 of its 122 tensors" in report and "fc: 512 -> 1000 by a new fc: 512 -> 10" in report
    assert "frozen: nothing" in report and "grayscale image repeated to 3 channels" in report
    state = model.state_dict()
    assert set(state) == set(hub)  # the input layer adds no key: the layout stays torchvision's
    assert all(torch.equal(state[k], v) for k, v in hub.items() if not k.startswith("fc."))
    bound = math.sqrt(6 / (512 + 10))
    assert 0.9 * bound < model.fc.weight.abs().max() <= bound  # Xavier-uniform
    reference = torchvision.models.resnet18(weights=None)
    reference.load_state_dict(hub)
    reference.fc = model.fc
    X = torch.rand(3, 1, 32, 32)
    mean = torch.tensor(finetune.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(finetune.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(X), reference.eval()((X.repeat(1, 3, 1, 1) - mean) / std))
        torch.testing.assert_close(model(X.repeat(1, 3, 1, 1)), model(X))  # RGB input: normalised only


def test_missing_weights_name_the_hub_cache_and_the_opt_in(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    cfg = config()
    with pytest.raises(DataError, match=rf"not in the torch hub cache \(.*empty/hub/checkpoints/{FILE}\); set "
                                        "data.download=true"):  # fmt: skip
        build_model(cfg, build_source(cfg).model_options())


def test_a_download_must_match_the_published_checksum(tmp_path, monkeypatch, http_folder):
    served, url = http_folder
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), served / FILE)
    target = tmp_path / "torch" / "hub" / "checkpoints"
    # the served file is not torchvision's: its SHA-256 does not start with f37072fd, so it is refused and deleted
    with pytest.raises(DataError, match=f"checksum mismatch for {FILE}.*the download was deleted"):
        finetune.torchvision_file("resnet18-imagenet", download=True, mirror=url)
    assert list(target.iterdir()) == []
    # with the published prefix of the served bytes, the same download is accepted and lands in the hub cache
    prefix = hashlib.sha256((served / FILE).read_bytes()).hexdigest()[:8]
    monkeypatch.setitem(finetune.TORCHVISION_WEIGHTS, "resnet18-imagenet", finetune.TorchvisionWeights(FILE, prefix))
    path = finetune.torchvision_file("resnet18-imagenet", download=True, mirror=url)
    assert path == target / FILE and path.read_bytes() == (served / FILE).read_bytes()
    assert finetune.torchvision_file("resnet18-imagenet") == path  # then read from the cache, no download
    with pytest.raises(DataError, match="could not download"):
        finetune.fetch_weights(finetune.TorchvisionWeights("absent.pth", "00"), tmp_path / "t", mirror=url,
                               progress=False)  # fmt: skip


def test_the_official_address_is_torchvisions():
    spec = finetune.TORCHVISION_WEIGHTS["resnet18-imagenet"]
    assert spec.url == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    assert spec.file.split("-")[1].startswith(spec.sha256_prefix)  # torch hub's rule: the name carries the prefix


def test_only_a_model_with_torchvision_weights_accepts_them():
    with pytest.raises(ConfigError, match="maps for resnet18-imagenet only, not 'lenet'"):
        resolve_config("lenet", overrides={"model.weights": "torchvision"})


def test_fine_tune_an_image_folder_then_evaluate_and_predict(hub, tmp_path, capsys):
    root = tmp_path / "hotdog"
    for k, name in enumerate(("hotdog", "not-hotdog")):
        (root / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.full((20, 20), 30 + 150 * k, dtype=np.uint8)).save(root / name / f"{i}.png")
    cfg = resolve_config("resnet18-imagenet", overrides={
        "data.data_dir": str(root), "model.weights": "torchvision", "model.head_lr_mult": 10.0, "optim.lr": 0.01,
        "task.options.resize": 32, "data.batch_size": 8, "train.epochs": 1, "train.progress": False})  # fmt: skip
    assert cfg.data.name == "image-folder"
    train(cfg, out_dir=tmp_path / "run")
    assert "fc: 512 -> 1000 by a new fc: 512 -> 2" in capsys.readouterr().err
    saved = ckpt.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert [g["lr"] for g in saved["optimizer"]["param_groups"]] == [0.01, pytest.approx(0.1)]
    run = load_run(tmp_path / "run")  # rebuilt without reading the hub file, with the same input layer
    assert isinstance(run.model.input_transform, finetune.ImageNetInput)
    assert json.loads((tmp_path / "run" / "task.json").read_text())["input_size"] == [1, 32, 32]
    from divekit.inference.predict import predict_images

    (prediction,) = predict_images(tmp_path / "run", [root / "hotdog" / "0.png"], top_k=2)
    image = torch.from_numpy(np.array(Image.open(root / "hotdog" / "0.png").resize((32, 32)))).float() / 255
    with torch.no_grad():
        probs = run.model(image[None, None]).softmax(dim=1)[0]
    assert dict(prediction.top)["hotdog"] == pytest.approx(float(probs[0]), abs=1e-5)
