"""Devices (notes §1.4 使用GPU): find GPUs, pick the best device, describe the machine."""

from __future__ import annotations

import os
import platform
import time

import torch

from divekit.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def try_gpu(i: int = 0) -> torch.device:
    """The ``i``-th CUDA GPU if it exists, else the CPU."""
    if torch.cuda.is_available() and torch.cuda.device_count() > i:
        return torch.device(f"cuda:{i}")
    return torch.device("cpu")


def try_all_gpus() -> list[torch.device]:
    """Every CUDA GPU, or ``[cpu]`` when there is none."""
    gpus = [torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())]
    return gpus or [torch.device("cpu")]


def mps_available() -> bool:
    """Whether Apple's Metal (MPS) backend can run here."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def auto_device() -> torch.device:
    """The fastest available device: CUDA, then MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(name: str, *, local_rank: int | None = None) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` into a device.

    ``local_rank`` picks the GPU of one process in a distributed run.

    Raises:
        ConfigError: the requested device does not exist on this machine.
    """
    if name == "auto":
        device = auto_device()
    elif name == "cpu":
        return torch.device("cpu")
    elif name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was requested but CUDA is not available; use --device cpu or auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) exist")
    elif name == "mps":
        if not mps_available():
            raise ConfigError("--device mps was requested but MPS is not available; use --device cpu or auto")
        device = torch.device("mps")
    else:
        raise ConfigError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)} or cuda:N")
    if device.type == "cuda" and device.index is None and local_rank is not None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def environment_report() -> dict[str, object]:
    """What ``divekit env`` prints: versions, accelerators and CPU threads."""
    import torchvision

    from divekit import __version__

    cuda = torch.cuda.is_available()
    return {
        "divekit": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "mps_available": mps_available(),
        "auto_device": str(auto_device()),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def busy_cores(window: float = 0.2) -> float | None:
    """How many cores other work keeps busy right now, from ``/proc/stat`` over ``window`` seconds.

    Measured while this process is idle, so it counts only the others. ``None``
    where ``/proc/stat`` does not exist (macOS, Windows).
    """

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:9]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(window)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def default_threads(local_world_size: int = 1) -> int:
    """CPU threads for PyTorch: this process's share of the cores that are idle.

    PyTorch starts one thread per core. When another process keeps a core
    busy, its threads wait on each other at every operation and small models
    run several times slower (LeNet: 2.5x on 2 cores; see
    benchmarks/threads_pitfall.py). So the default takes the cores this
    process may use, divides them among the processes of a distributed run
    on this machine, and leaves out the cores other work keeps busy:
    measured now from ``/proc/stat`` where it exists, else from the
    1-minute load average (which lags). ``--threads`` overrides it.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cores // max(1, local_world_size))
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            return share
    idle = max(1, int(cores - busy + 0.5))
    return max(1, min(share, idle // max(1, local_world_size) or 1))


def configure_threads(threads: int | None, *, local_world_size: int = 1) -> int:
    """Set PyTorch's intra-op thread count (``threads`` or :func:`default_threads`)."""
    count = threads or default_threads(local_world_size)
    torch.set_num_threads(count)
    return count
