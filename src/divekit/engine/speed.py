"""The trainer's speed options: memory layout, mixed precision, compilation and DDP wrapping.

Each function turns one config value into what the training loop uses, so the
rules (and the measurements behind them) live in one place.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from divekit.nn.norm import BatchNorm
from divekit.engine.distributed import DistContext

# Batch norm over fewer channels than this runs 3-6x slower in channels-last on the CPU, enough to make
# LeNet-BN's whole training step 2x slower (benchmarks/cnn_throughput.py, docs/results.md).
NARROW_NORM_CHANNELS = 32


def use_channels_last(requested: bool | None, model: nn.Module, device: torch.device) -> bool:
    """Channels-last when asked; by default for 2-D convolutional models on the CPU (oneDNN's fast
    layout: 1.07-1.43x for AlexNet, VGG, NiN and ResNet), unless the model batch-normalises fewer than
    ``NARROW_NORM_CHANNELS`` channels somewhere."""
    if requested is not None:
        return requested
    if device.type != "cpu" or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return False
    return not any(isinstance(m, (_BatchNorm, BatchNorm)) and m.num_features < NARROW_NORM_CHANNELS
                   for m in model.modules())  # fmt: skip


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The forward pass's context: nothing for fp32, autocast to bfloat16 or float16 otherwise."""
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for float16 on CUDA, where small gradients would underflow; else ``None``."""
    return torch.amp.GradScaler("cuda") if precision == "16" and device.type == "cuda" else None


def wrap_ddp(net: nn.Module, dist: DistContext, device: torch.device) -> nn.Module:
    """``net`` in DistributedDataParallel when this process is one of several, else ``net`` itself."""
    if not dist.enabled:
        return net
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids)


def compile_model(model: nn.Module) -> nn.Module:
    """``torch.compile(model)``, without the C++-extension loader's warning that a CPU-only machine has no
    CUDA runtime (true, expected, and not actionable)."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return torch.compile(model)
