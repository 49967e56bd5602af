import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

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


# --------------------------------------------------------------- the thread default
# Simulated machines: each window, each core spends 5 clock ticks (50 ms at 100 Hz) as given.
IDLE, SPIN = {"idle": 5}, {"user": 5}
FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def proc_stat(cores: list[dict[str, int]]) -> str:
    """``/proc/stat`` contents of a machine whose cores have the cumulative ``cores`` counters."""
    rows = [[core.get(field, 0) for field in FIELDS] for core in cores]
    lines = ["cpu  " + " ".join(str(sum(column)) for column in zip(*rows))]
    lines += [f"cpu{i} " + " ".join(map(str, row)) for i, row in enumerate(rows)]
    lines += ["intr 12345 0 0", "ctxt 99999", "btime 1700000000", "processes 4242", "procs_running 2"]
    return "\n".join(lines) + "\n"


def readings(windows: list[list[dict[str, int]]], *, own_per_window: float = 0.0) -> list[device.CpuTimes]:
    """What :func:`device.read_cpu_times` would return before and after each of ``windows``."""
    counters = [{"user": 7000, "system": 900, "idle": 50000, "steal": 40} for _ in windows[0]]
    samples = [device.parse_proc_stat(proc_stat(counters), cpus=range(len(counters)))]
    for i, window in enumerate(windows, start=1):
        for core, spent in zip(counters, window):
            for field, ticks in spent.items():
                core[field] = core.get(field, 0) + ticks
        samples.append(device.parse_proc_stat(proc_stat(counters), cpus=range(len(counters)), own=i * own_per_window))
    return samples


def choice(windows: list[list[dict[str, int]]], *, local_world_size: int = 1, **kwargs) -> int:
    busy = device.sustained_busy_cores(readings(windows, **kwargs))
    return device.threads_for(len(windows[0]), busy, local_world_size=local_world_size)


SITUATIONS = {  # name: (five windows on 2 cores, the threads the default must choose)
    "idle": ([[IDLE, IDLE]] * 5, 2),
    "one core kept busy by another process": ([[IDLE, SPIN]] * 5, 1),
    "both cores kept busy": ([[SPIN, SPIN]] * 5, 1),
    "steal high, no other process": ([[{"steal": 4, "idle": 1}, {"steal": 3, "idle": 2}]] * 5, 2),
    "steal high and a process on the rest of a core": ([[{"steal": 4, "idle": 1}, {"steal": 4, "user": 1}]] * 5, 1),
    "a process that ended in the first window": ([[IDLE, SPIN]] + [[IDLE, IDLE]] * 4, 2),
    "a process that ended in the second window": ([[SPIN, IDLE], [{"user": 3, "idle": 2}, IDLE]] + [[IDLE] * 2] * 3, 2),
    "background noise, a tick per window": ([[{"user": 1, "idle": 4}, IDLE]] * 5, 2),
    "iowait is idle time": ([[{"iowait": 5}, {"iowait": 4, "system": 1}]] * 5, 2),
}


@pytest.mark.parametrize("name", SITUATIONS)
def test_the_default_in_simulated_situations(name):
    windows, expected = SITUATIONS[name]
    assert choice(windows) == expected


def test_this_process_own_cpu_time_is_not_load():
    # Our own threads (say OpenMP workers still spinning after an operation) ran on core 0.
    assert choice([[SPIN, IDLE]] * 5, own_per_window=5.0) == 2
    assert choice([[SPIN, SPIN]] * 5, own_per_window=5.0) == 1


def test_a_distributed_run_divides_the_free_cores_among_its_processes():
    assert choice([[IDLE] * 4] * 5, local_world_size=2) == 2
    assert choice([[IDLE, IDLE, IDLE, SPIN]] * 5, local_world_size=2) == 1
    assert choice([[IDLE, IDLE]] * 5, local_world_size=2) == 1
    assert choice([[IDLE, IDLE]] * 5, local_world_size=3) == 1
    assert choice([[IDLE] * 8] * 5, local_world_size=2) == 4
    assert choice([[IDLE] * 6 + [SPIN, SPIN]] * 5, local_world_size=2) == 3


def test_only_the_cores_this_process_may_use_count():
    counters = [{"user": 5000}, {"idle": 5000}]  # core 0 busy with another container's work
    before = device.parse_proc_stat(proc_stat(counters), cpus={1})
    counters = [{"user": 5005}, {"idle": 5005}]
    after = device.parse_proc_stat(proc_stat(counters), cpus={1})
    assert before.cores == 1 and device.window_busy_cores(before, after) == 0.0
    whole = device.parse_proc_stat(proc_stat(counters), cpus={5})  # a core the file does not list
    assert whole.cores == 2 and whole.busy == 5005 and whole.total == 10010


def test_parse_proc_stat_reads_old_kernels_and_refuses_garbage():
    old_kernel = device.parse_proc_stat("cpu  10 0 5 100 0\ncpu0 10 0 5 100 0\n", cpus={0})  # no irq, steal
    assert old_kernel == device.CpuTimes(busy=15, steal=0, total=115, own=0.0, cores=1)
    assert device.parse_proc_stat("intr 1 2\n") is None
    assert device.parse_proc_stat("cpu  10 x 5\n") is None


def test_a_window_without_time_given_is_skipped():
    sample = readings([[IDLE, IDLE]])[0]
    assert device.window_busy_cores(sample, sample) is None
    assert device.sustained_busy_cores([sample, sample]) is None


def fake_machine(monkeypatch, windows: list[list[dict[str, int]]]) -> tuple[list[float], list[int]]:
    """Make :func:`device.default_threads` read ``windows`` on a 2-core machine; return (sleeps, reads)."""
    samples, slept, read = iter(readings(windows)), [], []
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(device, "read_cpu_times", lambda: read.append(1) or next(samples))
    monkeypatch.setattr(device.time, "sleep", slept.append)
    return slept, read


@pytest.mark.parametrize("name", SITUATIONS)
def test_default_threads_measures_the_situation(monkeypatch, name):
    windows, expected = SITUATIONS[name]
    fake_machine(monkeypatch, windows)
    assert device.default_threads() == expected


def test_the_measurement_costs_three_windows_unless_they_disagree(monkeypatch):
    slept, read = fake_machine(monkeypatch, [[IDLE, SPIN]] * 5)
    assert device.default_threads() == 1
    assert len(read) == 4 and sum(slept) == pytest.approx(3 * device.WINDOW_S)
    slept, read = fake_machine(monkeypatch, [[IDLE, SPIN]] + [[IDLE, IDLE]] * 4)
    assert device.default_threads() == 2
    assert len(read) == 6 and sum(slept) == pytest.approx(5 * device.WINDOW_S) and sum(slept) <= 0.3


def test_without_proc_stat_the_default_uses_the_load_average_then_the_share(monkeypatch, tmp_path):
    monkeypatch.setattr(device, "PROC_STAT", str(tmp_path / "missing"))
    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert device.busy_cores() is None
    for load, expected in ((0.0, 4), (0.2, 4), (1.0, 3), (1.2, 3), (3.0, 1), (9.0, 1)):
        monkeypatch.setattr(device.os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert device.default_threads() == expected
    assert device.default_threads(local_world_size=2) == 1
    monkeypatch.delattr(device.os, "getloadavg")  # Windows has no load average
    assert device.default_threads() == 4
    assert device.default_threads(local_world_size=2) == 2


@given(cores=st.integers(1, 256), busy=st.floats(0, 300), more=st.floats(0, 10), processes=st.integers(1, 16))
def test_threads_for_stays_in_range_and_never_rises_with_load(cores, busy, more, processes):
    threads = device.threads_for(cores, busy, local_world_size=processes)
    assert 1 <= threads <= max(1, cores // processes)
    assert device.threads_for(cores, busy + more, local_world_size=processes) <= threads
    assert device.threads_for(cores, None, local_world_size=processes) == max(1, cores // processes)


@pytest.mark.skipif(not device.os.path.exists("/proc/stat"), reason="no /proc/stat here")
def test_the_real_proc_stat_parses_over_this_process_cores():
    sample = device.read_cpu_times()
    assert sample is not None and sample.cores == device.usable_cores()
    assert 0 <= sample.busy <= sample.total and sample.own >= 0
