"""The default memory layout follows the throughput measurements (benchmarks/cnn_throughput.py)."""

from __future__ import annotations

import pytest
import torch

from divekit.models import create_model
from divekit.engine.speed import use_channels_last

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(("name", "expected"), [
    ("lenet", True), ("alexnet", True), ("vgg11-narrow", True), ("nin", True), ("resnet18", True),
    ("lenet-bn", False), ("lenet-bn-torch", False), ("mlp", False),
])  # fmt: skip
def test_cpu_default(name, expected):
    with torch.device("meta"):
        model = create_model(name)
    assert use_channels_last(None, model, CPU) is expected


def test_explicit_choice_and_other_devices():
    with torch.device("meta"):
        model = create_model("lenet-bn")
    assert use_channels_last(True, model, CPU) is True
    assert use_channels_last(None, create_model("alexnet", image_size=67), CUDA) is False
