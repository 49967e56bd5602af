"""Devices (notes §1.4 使用GPU): find GPUs, pick the best device, describe the machine."""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

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
            raise ConfigError("device 'cuda' was requested but CUDA is not available; use device cpu or auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) exist")
    elif name == "mps":
        if not mps_available():
            raise ConfigError("device 'mps' was requested but MPS is not available; use device cpu or auto")
        device = torch.device("mps")
    else:
        raise ConfigError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)} or cuda:N")
    if device.type == "cuda" and device.index is None and local_rank is not None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def environment_report() -> dict[str, object]:
    """What ``divekit env`` prints: versions, accelerators and CPU threads."""
    from divekit import __version__

    cuda = torch.cuda.is_available()
    return {
        "divekit": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": installed_version("torchvision"),
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "mps_available": mps_available(),
        "auto_device": str(auto_device()),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def installed_version(package: str) -> str | None:
    """``package``'s installed version, read from its metadata: importing torchvision to ask would cost seconds."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------ the thread default
# A core counts as taken by other work when that work keeps it busier than this
# fraction of the time. The break-even is low: on 2 cores, 2 threads beat 1 by 1.5x
# on an idle machine but lose 2.5-3.7x while another process holds a core, so they
# lose overall once it holds one more than ~10-20% of the time (docs/scale.md). The
# sampling noise of 5-tick windows sets the floor: 0.25 needs 2 ticks in a window.
TAKEN_ABOVE = 0.25
WINDOW_S = 0.05  # one window: 5 clock ticks per core at the usual 100 Hz
MIN_WINDOWS, MAX_WINDOWS = 3, 5  # 0.15 s when the windows agree, 0.25 s when they do not
PROC_STAT = "/proc/stat"


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU-time counters at one instant, in clock ticks, summed over ``cores`` cores.

    ``busy``: running anything (user, nice, system, irq, softirq); ``steal``:
    time the hypervisor gave the virtual cores to other machines; ``total``:
    every kind of time, idle and steal included; ``own``: this process's CPU
    time (all its threads).
    """

    busy: float
    steal: float
    total: float
    own: float
    cores: int


def parse_proc_stat(text: str, *, cpus: Collection[int] | None = None, own: float = 0.0) -> CpuTimes | None:
    """The counters in ``/proc/stat`` contents ``text``: the lines of ``cpus``, else the whole-machine line.

    ``own`` is this process's CPU time in clock ticks. None when ``text`` has
    no readable ``cpu`` line.
    """
    rows = {name: rest.split() for name, _, rest in (line.partition(" ") for line in text.splitlines())
            if name.startswith("cpu")}  # fmt: skip
    per_core = sum(name != "cpu" for name in rows)
    names = [f"cpu{i}" for i in cpus or ()]
    if not names or not all(name in rows for name in names):
        names, cores = ["cpu"], max(1, per_core)
    else:
        cores = len(names)
    try:
        # user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
        fields = [[int(v) for v in (rows[name] + ["0"] * 8)[:8]] for name in names]
    except (KeyError, ValueError):
        return None
    sums = [float(sum(column)) for column in zip(*fields)]
    return CpuTimes(sum(sums[i] for i in (0, 1, 2, 5, 6)), sums[7], sum(sums), own, cores)


def window_busy_cores(before: CpuTimes, after: CpuTimes) -> float | None:
    """How many cores work other than this process kept busy between two readings.

    Steal time is neither busy nor available: a core is as busy as the share
    of the time it was given that others used. None when no time was given.
    """
    available = (after.total - before.total) - (after.steal - before.steal)
    if available <= 0:
        return None
    others = (after.busy - before.busy) - (after.own - before.own)
    return max(0.0, others) * after.cores / available


def sustained_busy_cores(samples: Sequence[CpuTimes]) -> float | None:
    """The median over the windows between consecutive ``samples`` of :func:`window_busy_cores`.

    The median ignores a minority of windows: a process that ended during the
    first window, or one short burst, is not sustained load.
    """
    windows = [w for w in map(window_busy_cores, samples, samples[1:]) if w is not None]
    return statistics.median(windows) if windows else None


def cores_taken(busy: float) -> int:
    """The cores to leave to other work that keeps ``busy`` cores busy."""
    return max(0, math.ceil(busy - TAKEN_ABOVE))


def threads_for(cores: int, busy: float | None, *, local_world_size: int = 1) -> int:
    """Threads for one of ``local_world_size`` processes on ``cores`` cores, ``busy`` of them kept busy by others.

    ``busy=None`` (unknown) gives each process its share of all the cores.
    """
    free = cores - (cores_taken(busy) if busy is not None else 0)
    return max(1, free // max(1, local_world_size))


def read_cpu_times() -> CpuTimes | None:
    """The counters of ``/proc/stat`` over the cores this process may use; None where it does not exist."""
    try:
        with open(PROC_STAT) as handle:
            text = handle.read()
    except OSError:
        return None
    own = time.process_time() * os.sysconf("SC_CLK_TCK")
    return parse_proc_stat(text, cpus=_affinity(), own=own)


def sample_cpu_times(read: Callable[[], CpuTimes | None], *, sleep: Callable[[float], None]) -> list[CpuTimes] | None:
    """Readings :data:`WINDOW_S` apart: :data:`MIN_WINDOWS` windows, up to :data:`MAX_WINDOWS` while they disagree.

    Windows that disagree (a process ended or started meanwhile) earn more
    windows, so that the median has a majority to follow. None when a reading fails.
    """
    samples: list[CpuTimes] = []
    while len(samples) <= MAX_WINDOWS:
        if samples:
            sleep(WINDOW_S)
        sample = read()
        if sample is None:
            return None
        samples.append(sample)
        if len(samples) > MIN_WINDOWS and _windows_agree(samples):
            break
    return samples


def _windows_agree(samples: Sequence[CpuTimes]) -> bool:
    windows = map(window_busy_cores, samples, samples[1:])
    return len({cores_taken(w) for w in windows if w is not None}) <= 1


def busy_cores() -> float | None:
    """How many cores other work keeps busy, sustained over 0.15-0.25 s (:func:`sample_cpu_times`).

    Measured while this process sleeps, less its own CPU time, so it counts
    only the others; steal time does not count. ``None`` where ``/proc/stat``
    does not exist (macOS, Windows).
    """
    samples = sample_cpu_times(read_cpu_times, sleep=time.sleep)
    return sustained_busy_cores(samples) if samples else None


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(_affinity() or ()) or os.cpu_count() or 1


def _affinity() -> set[int] | None:
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def default_threads(local_world_size: int = 1) -> int:
    """CPU threads for PyTorch (notes §3 训练硬件使用): this process's share of the cores others leave free.

    PyTorch starts one thread per core. Its threads meet at a barrier after
    every operation, so when another process keeps a core busy they all wait
    for the one sharing that core and small models run several times slower
    (LeNet: 2.5-3.7x on 2 cores; benchmarks/threads_pitfall.py). So the
    default takes the cores this process may use, leaves out those other
    work keeps busy (:func:`busy_cores`; where ``/proc/stat`` is missing, the
    1-minute load average, which lags), and divides the rest among the
    ``local_world_size`` processes of a distributed run on this machine.
    An explicit ``train.threads`` (``threads`` of :func:`configure_threads`) overrides it.
    """
    busy = busy_cores()
    if busy is None:
        busy = _load_average()
    return threads_for(usable_cores(), busy, local_world_size=local_world_size)


def configure_threads(threads: int | None, *, local_world_size: int = 1) -> int:
    """Set PyTorch's intra-op thread count (``threads`` or :func:`default_threads`)."""
    count = threads or default_threads(local_world_size)
    torch.set_num_threads(count)
    return count
