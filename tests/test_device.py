import pytest
import torch

from divekit import device
from divekit.errors import ConfigError


def test_try_gpu_falls_back_to_cpu_when_the_gpu_is_absent():
    beyond = torch.cuda.device_count() + 1
    assert device.try_gpu(beyond) == torch.device("cpu")
    gpus = device.try_all_gpus()
    assert gpus == ([torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())] or [torch.device("cpu")])


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_available", lambda: False)
    assert device.auto_device() == torch.device("cpu")
    monkeypatch.setattr(device, "mps_available", lambda: True)
    assert device.auto_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.auto_device() == torch.device("cuda")


def test_resolve_device_refuses_what_is_not_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_available", lambda: False)
    assert device.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        device.resolve_device("cuda")
    with pytest.raises(ConfigError, match="MPS is not available"):
        device.resolve_device("mps")
    with pytest.raises(ConfigError, match="unknown device"):
        device.resolve_device("tpu")


def test_environment_report_names_versions_devices_and_threads():
    report = device.environment_report()
    for key in ("torch", "torchvision", "cuda_available", "mps_available", "cuda_devices", "cpu_count",
                "torch_threads"):  # fmt: skip
        assert key in report
    assert report["torch"] == torch.__version__


def test_default_threads_leaves_out_busy_cores(monkeypatch):
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    for busy, expected in ((0.0, 4), (0.4, 4), (1.0, 3), (2.9, 1), (4.0, 1)):
        monkeypatch.setattr(device, "busy_cores", lambda busy=busy: busy)
        assert device.default_threads() == expected
    monkeypatch.setattr(device, "busy_cores", lambda: 0.0)
    assert device.default_threads(local_world_size=2) == 2


def test_default_threads_falls_back_to_the_load_average(monkeypatch):
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(device, "busy_cores", lambda: None)
    monkeypatch.setattr(device.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert device.default_threads() == 4
    assert device.default_threads(local_world_size=2) == 2
    monkeypatch.setattr(device.os, "getloadavg", lambda: (3.0, 0.0, 0.0))
    assert device.default_threads() == 1
    monkeypatch.setattr(device.os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert device.default_threads() == 3


def test_busy_cores_is_a_fraction_of_the_machine():
    busy = device.busy_cores(window=0.05)
    assert busy is None or 0.0 <= busy <= (device.os.cpu_count() or 1)
