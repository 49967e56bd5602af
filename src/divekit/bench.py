"""``divekit bench``: which speed options pay off for a model on this machine.

For each option (fp32, bf16 autocast, channels-last, ``torch.compile``) it
times training steps (forward, backward, SGD step) and inference on
synthetic input of the model's shape, all in one process. FLOPs per example
come from PyTorch's own ``FlopCounterMode`` (matrix multiplies and
convolutions), and the achieved FLOP/s is set against this machine's matmul
peak, measured in the same run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from divekit.errors import ConfigError
from divekit.models.registry import ModelEntry, create_model, get_model_entry, supported_options
from divekit.engine.speed import compile_model

OPTIONS = ("fp32", "bf16", "channels-last", "compile")


@dataclass
class Workload:
    """A model with a synthetic batch: ``loss(model)`` for training, ``forward(model)`` for inference."""

    model: nn.Module
    loss: Callable[[nn.Module], torch.Tensor]
    forward: Callable[[nn.Module], Any]
    examples: int
    unit: str
    shape: str


def classifier_workload(entry: ModelEntry, batch_size: int, input_size: tuple[int, ...] | None,
                        device: torch.device, channels_last: bool) -> Workload:  # fmt: skip
    size = tuple(input_size or entry.input_size or (3, 224, 224))
    if len(size) != 3:
        raise ConfigError(f"an image model's input size is C,H,W, got {','.join(map(str, size))}")
    facts = {"in_channels": size[0], "image_size": size[-1], "num_classes": 10}
    model = create_model(entry.name, **supported_options(entry.name, facts)).to(device)
    X = torch.rand(batch_size, *size, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    if channels_last:
        model, X = model.to(memory_format=torch.channels_last), X.contiguous(memory_format=torch.channels_last)
    return Workload(model, lambda m: F.cross_entropy(m(X), y), lambda m: m(X), batch_size, "images",
                    "x".join(map(str, size)))  # fmt: skip


def language_model_workload(entry: ModelEntry, batch_size: int, input_size: tuple[int, ...] | None,
                            device: torch.device, channels_last: bool) -> Workload:  # fmt: skip
    """Token ids ``(N, T)`` -> logits ``(N, T, V)``: the book's character model (V = 28, T = 35 by default)."""
    (num_steps,) = input_size or (35,)
    vocab = 28
    model = create_model(entry.name, **supported_options(entry.name, {"vocab_size": vocab})).to(device)
    X = torch.randint(0, vocab, (batch_size, num_steps), device=device)
    Y = torch.randint(0, vocab, (batch_size, num_steps), device=device)

    def loss(m: nn.Module) -> torch.Tensor:
        logits, _ = m(X)
        return F.cross_entropy(logits.reshape(-1, vocab), Y.reshape(-1))

    return Workload(model, loss, lambda m: m(X), batch_size * num_steps, "tokens", f"{num_steps} steps")


def seq2seq_workload(entry: ModelEntry, batch_size: int, input_size: tuple[int, ...] | None,
                     device: torch.device, channels_last: bool) -> Workload:  # fmt: skip
    """(source, target input, source lengths) -> logits: sentences of ``T`` tokens (10 by default)."""
    (num_steps,) = input_size or (10,)
    vocab = 200
    facts = {"src_vocab_size": vocab, "tgt_vocab_size": vocab}
    model = create_model(entry.name, **supported_options(entry.name, facts)).to(device)
    src = torch.randint(0, vocab, (batch_size, num_steps), device=device)
    tgt = torch.randint(0, vocab, (batch_size, num_steps), device=device)
    lengths = torch.full((batch_size,), num_steps, device=device)

    def loss(m: nn.Module) -> torch.Tensor:
        return F.cross_entropy(m(src, tgt, lengths).reshape(-1, vocab), tgt.reshape(-1))

    return Workload(model, loss, lambda m: m(src, tgt, lengths), batch_size * num_steps, "tokens",
                    f"{num_steps} tokens")  # fmt: skip


WORKLOADS: dict[str, Callable[..., Workload]] = {
    "classification": classifier_workload,
    "language-model": language_model_workload,
    "seq2seq": seq2seq_workload,
}


def matmul_peak(device: torch.device, dtype: torch.dtype, *, sizes: tuple[int, ...] = (2048, 4096),
                seconds: float = 1.0) -> float:
    """FLOP/s of square matrix products in ``dtype``, the best over ``sizes``: this machine's practical peak.

    Larger products run closer to the hardware's limit, so the best size is kept; a convolution that
    oneDNN or cuDNN blocks better than this probe can still come out above 100%.
    """
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        torch.mm(a, b)
        _sync(device)
        count, started = 0, time.perf_counter()
        while count < 2 or time.perf_counter() - started < seconds / len(sizes):
            torch.mm(a, b)
            count += 1
            _sync(device)
        best = max(best, 2 * n**3 * count / (time.perf_counter() - started))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops(fn: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _rate(step: Callable[[], None], device: torch.device, *, warmup: int, seconds: float) -> float:
    """Steps per second of ``step`` after ``warmup`` calls, over about ``seconds``."""
    for _ in range(warmup):
        step()
    _sync(device)
    count, started = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - started < seconds:
        step()
        count += 1
    _sync(device)
    return count / (time.perf_counter() - started)


@dataclass
class BenchRow:
    option: str
    train_per_s: float
    infer_per_s: float
    train_flops_per_example: float
    infer_flops_per_example: float
    peak: float

    @property
    def train_flops_per_s(self) -> float:
        return self.train_per_s * self.train_flops_per_example

    @property
    def fraction_of_peak(self) -> float:
        return self.train_flops_per_s / self.peak if self.peak else 0.0


def bench_option(entry: ModelEntry, option: str, *, batch_size: int, input_size: tuple[int, ...] | None,
                 device: torch.device, seconds: float, peaks: dict[str, float]) -> tuple[BenchRow, Workload]:  # fmt: skip
    """Time one option of one model."""
    build = WORKLOADS.get(entry.task)
    if build is None:
        raise ConfigError(f"bench does not know how to feed a {entry.task} model yet")
    work = build(entry, batch_size, input_size, device, option == "channels-last")
    model = compile_model(work.model) if option == "compile" else work.model
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if option == "bf16"
                else contextlib.nullcontext())  # fmt: skip
    optimizer = torch.optim.SGD(work.model.parameters(), lr=1e-3)

    def train_step() -> None:
        with autocast:
            loss = work.loss(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer_step() -> None:
        with torch.inference_mode(), autocast:
            work.forward(model)

    train_flops = flops(lambda: work.loss(work.model).backward()) / work.examples
    with torch.inference_mode():
        infer_flops = flops(lambda: work.forward(work.model)) / work.examples
    warmup = 3 if option == "compile" else 2
    train = _rate(train_step, device, warmup=warmup, seconds=seconds) * work.examples
    infer = _rate(infer_step, device, warmup=warmup, seconds=seconds / 2) * work.examples
    peak = peaks["bf16" if option == "bf16" else "fp32"]
    return BenchRow(option, train, infer, train_flops, infer_flops, peak), work


def run_bench(name: str, *, batch_size: int = 64, input_size: tuple[int, ...] | None = None,
              options: tuple[str, ...] = OPTIONS, device: torch.device = torch.device("cpu"),
              seconds: float = 3.0) -> tuple[list[BenchRow], dict[str, float], Workload]:  # fmt: skip
    """Benchmark model ``name`` under each option; return the rows, the matmul peaks and a workload."""
    entry = get_model_entry(name)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"unknown bench option(s) {', '.join(unknown)}; choose from {', '.join(OPTIONS)}")
    # A quick run (tests, smoke checks) gets a quick probe.
    probe = {"sizes": (2048, 4096)} if seconds >= 1 else {"sizes": (1024,), "seconds": seconds}
    peaks = {"fp32": matmul_peak(device, torch.float32, **probe), "bf16": matmul_peak(device, torch.bfloat16, **probe)}
    rows, work = [], None
    for option in options:
        if option == "channels-last" and not _has_conv2d(entry, input_size):
            continue
        torch.manual_seed(0)
        row, work = bench_option(entry, option, batch_size=batch_size, input_size=input_size, device=device,
                                 seconds=seconds, peaks=peaks)  # fmt: skip
        rows.append(row)
    return rows, peaks, work


def _has_conv2d(entry: ModelEntry, input_size: tuple[int, ...] | None) -> bool:
    """Whether channels-last applies: an image model with 2-D convolutions."""
    if WORKLOADS.get(entry.task) is not classifier_workload:
        return False
    work = classifier_workload(entry, 1, input_size, torch.device("cpu"), False)
    return any(isinstance(m, nn.Conv2d) for m in work.model.modules())


def format_table(name: str, rows: list[BenchRow], peaks: dict[str, float], work: Workload, *,
                 batch_size: int, device: torch.device) -> str:  # fmt: skip
    unit = work.unit
    lines = [
        f"divekit bench {name}: batch {batch_size}, input {work.shape}, {device}, {torch.get_num_threads()} threads",
        f"matmul peak measured now: fp32 {peaks['fp32'] / 1e9:,.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:,.1f} GFLOP/s",
        f"{'option':<14}{'train ' + unit + '/s':>18}{'infer ' + unit + '/s':>18}{'MFLOP/ex train':>16}"
        f"{'GFLOP/s train':>15}{'% of peak':>11}",
    ]
    for r in rows:
        lines.append(f"{r.option:<14}{r.train_per_s:>18,.0f}{r.infer_per_s:>18,.0f}"
                     f"{r.train_flops_per_example / 1e6:>16,.1f}{r.train_flops_per_s / 1e9:>15,.2f}"
                     f"{100 * r.fraction_of_peak:>10.1f}%")  # fmt: skip
    best = max(rows, key=lambda r: r.train_per_s)
    lines.append(f"fastest training option here: {best.option} ({best.train_per_s / rows[0].train_per_s:.2f}x fp32)")
    return "\n".join(lines)
