"""Optimisers and learning-rate schedules built from :class:`~divekit.engine.options.OptimConfig`.

The optimisers use PyTorch's fused implementations where the parameters
allow (CPU and CUDA floating-point tensors): one kernel per step instead of
one per parameter (SGD with momentum 2.4x, Adam 2.7x faster steps on a
LeNet-sized model on the CPU), and they can skip a step on the device when
told a gradient overflowed (``found_inf``), so the trainer never has to read
a flag on the host to skip a bad step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from divekit.engine.options import OptimConfig

FUSED_DEVICES = ("cpu", "cuda")


def build_optimizer(params: nn.Module | Iterable[dict[str, Any]], config: OptimConfig) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam or AdamW over a model or explicit parameter groups.

    Parameter groups may carry their own ``lr`` (e.g. a fine-tuned head
    trained faster than the backbone); the others use ``config.lr``.
    """
    if isinstance(params, nn.Module):
        groups = [{"params": [p for p in params.parameters() if p.requires_grad]}]
    else:
        groups = list(params)
    fused = can_fuse(p for g in groups for p in g["params"]) or None
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               fused=fused)  # fmt: skip
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def can_fuse(params: Iterable[torch.Tensor]) -> bool:
    """Whether every parameter is a floating-point tensor on a device with fused optimiser kernels."""
    params = list(params)
    return bool(params) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)


def skips_on_device(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step()`` honours a ``found_inf`` flag on the device (fused implementations)."""
    return all(group.get("fused") for group in optimizer.param_groups)


def clip_gradients(optimizer: torch.optim.Optimizer, clip: float | None) -> torch.Tensor:
    """Clip the global gradient norm to ``clip`` if set; return the norm (a device tensor, nothing read)."""
    params = [q for group in optimizer.param_groups for q in group["params"] if q.grad is not None]
    if clip is not None:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    if not params:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm([q.grad for q in params])


def optimizer_step(optimizer: torch.optim.Optimizer, ok: torch.Tensor, *, scaler: torch.amp.GradScaler | None,
                   on_device: bool) -> None:  # fmt: skip
    """Step, unless ``ok`` (a device flag) says the loss or the gradients were not finite.

    A fused optimiser is told on the device (``found_inf``) and leaves every
    parameter and its state as they were; a grad scaler skips overflowing
    steps itself; other optimisers read the flag once (e.g. on MPS).
    """
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    elif on_device:
        optimizer.found_inf = (~ok).float()
        optimizer.grad_scale = None
        optimizer.step()
        del optimizer.found_inf, optimizer.grad_scale
    elif bool(ok):
        optimizer.step()


def lr_factor(step: int, *, config: OptimConfig, steps_per_epoch: int, epochs: int) -> float:
    """The multiplier of the base learning rate at optimiser step ``step``.

    Linear warm-up over ``warmup_epochs``, then ``constant``, ``step`` decay
    (times ``gamma`` every ``step_size`` epochs) or ``cosine`` decay to zero.
    """
    warmup = config.warmup_epochs * steps_per_epoch
    if warmup and step < warmup:
        return (step + 1) / warmup
    if config.schedule == "step":
        return config.gamma ** (step // (config.step_size * steps_per_epoch))
    if config.schedule == "cosine":
        total = max(epochs * steps_per_epoch - warmup, 1)
        progress = min((step - warmup) / total, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, *, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler following :func:`lr_factor`; its state_dict is plain data."""

    def factor(step: int) -> float:
        return lr_factor(step, config=config, steps_per_epoch=steps_per_epoch, epochs=epochs)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
