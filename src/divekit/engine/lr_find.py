"""The learning-rate range test: a short sweep of exponentially growing learning rates (Smith 2017).

Train for a few dozen steps while the learning rate grows from ``start_lr``
to ``end_lr`` by the same factor each step, record the loss, and stop when it
blows up. The loss first barely moves (lr too small), then falls, then
diverges (lr too large); a good learning rate sits on the falling part.
Afterwards the model's weights and buffers, the optimiser's state and the
random number generators are put back exactly as they were, so the sweep
leaves no trace on a later ``fit``.

Unlike the trainer, the sweep reads the loss after every step: it must stop
the moment the loss diverges, and it is only ever a few dozen steps long.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from divekit.choices import LR_RULES
from divekit.data.batching import as_epoch_batches
from divekit.engine.evaluation import default_transfer
from divekit.engine.optim import build_optimizer
from divekit.engine.options import OptimConfig, require
from divekit.tasks.base import Objective

EDGE = 0.05  # the edge of divergence: the last lr whose smoothed loss is within 5% of the lowest
SMOOTHING = 0.98  # weight of the past in the moving average that decides when to stop (as fastai's)
DIVERGE = 4.0  # stop when that average exceeds this multiple of its best


@dataclass
class LRFinderResult:
    """The losses of a learning-rate sweep and the learning rate it suggests.

    Attributes:
        lrs, losses: the learning rate and the training loss of each step.
        smoothed: ``losses`` averaged over neighbouring steps (:func:`centered_mean`).
        suggestion: the suggested learning rate (``None`` when the sweep was too short to tell).
        rule: how ``suggestion`` was picked, in words.
        candidates: what each rule of :data:`LR_RULES` picks.
        stop_reason: why the sweep ended.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None
    rule: str
    candidates: dict[str, float]
    stop_reason: str

    def figure(self) -> Any:
        """Loss against learning rate (log scale), the suggestion marked."""
        from divekit.plot import lr_finder_figure

        return lr_finder_figure(self)

    def _repr_png_(self) -> bytes:
        from divekit.plot import figure_png

        return figure_png(self.figure())


def suggest(lrs: list[float], smoothed: list[float], *, rule: str = "edge/10") -> tuple[float | None, str, dict[str, float]]:
    """The learning rate ``rule`` picks from a sweep, the rule in words, and every rule's pick.

    ``edge/10``: a tenth of the largest lr whose smoothed loss is still within
    5% of the lowest, the edge past which the loss diverges (Smith's upper
    bound for a cycle, divided by 10 for safety). It also works when the
    loss stays flat until it diverges, as a sigmoid LeNet's does in a short
    sweep, where the lowest point is noise.
    ``min/10``: a tenth of the lr of the lowest smoothed loss.
    ``steepest``: where the smoothed loss falls fastest per step of ``log(lr)``, before its minimum.
    """
    require(rule in LR_RULES, f"unknown lr-finder rule {rule!r}; use one of {', '.join(LR_RULES)}")
    skip = min(len(smoothed) // 10, 5)  # the moving average's first values carry little history
    if len(smoothed) - skip < 5:
        return None, "too few steps to suggest a learning rate", {}
    best = min(range(skip, len(smoothed)), key=smoothed.__getitem__)
    edge = max(i for i in range(best, len(smoothed)) if smoothed[i] - smoothed[best] <= abs(smoothed[best]) * EDGE)
    slopes = [(smoothed[i + 1] - smoothed[i]) / math.log(lrs[i + 1] / lrs[i]) for i in range(skip, max(best, skip + 1))]
    picks = {"edge/10": lrs[edge] / 10, "min/10": lrs[best] / 10,
             "steepest": lrs[skip + min(range(len(slopes)), key=slopes.__getitem__)]}  # fmt: skip
    words = {"edge/10": f"a tenth of the largest lr ({lrs[edge]:.3g}) whose smoothed loss is within 5% of the lowest",
             "min/10": f"a tenth of the lr of the lowest smoothed loss ({lrs[best]:.3g})",
             "steepest": "the lr where the smoothed loss falls fastest"}  # fmt: skip
    return picks[rule], words[rule], picks


@contextlib.contextmanager
def kept_random_state() -> Iterator[None]:
    """Put back PyTorch's (CPU and CUDA), Python's and NumPy's random states on leaving."""
    import random

    import numpy as np

    python, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)


@dataclass
class Saved:
    """What a sweep changes in the model and the optimiser, to put back."""

    model: dict[str, torch.Tensor]
    training: bool
    optimizer: dict[str, Any] | None

    @classmethod
    def take(cls, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> Saved:
        return cls(copy.deepcopy(model.state_dict()), model.training,
                   copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None)  # fmt: skip

    def put_back(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        model.load_state_dict(self.model)
        model.train(self.training)
        if optimizer is not None and self.optimizer is not None:
            optimizer.load_state_dict(self.optimizer)


def find_lr(model: nn.Module, objective: Objective, batches: Any, *, optim: OptimConfig | None = None,
            optimizer: torch.optim.Optimizer | None = None, param_groups: Iterable[dict[str, Any]] | None = None,
            transfer: Callable[..., Any] = default_transfer, device: torch.device | None = None,
            start_lr: float = 1e-6, end_lr: float = 10.0, num_steps: int = 100, rule: str = "edge/10",
            seed: int = 0) -> LRFinderResult:  # fmt: skip
    """Sweep the learning rate from ``start_lr`` to ``end_lr`` over ``num_steps`` steps; restore everything.

    Args:
        model: the network, on ``device`` (default: where its parameters are).
        objective: the loss.
        batches: training batches (anything :func:`divekit.fit` takes; cycled if too few).
        optim: the optimiser's settings (its ``lr`` and ``schedule`` are ignored), used when
            ``optimizer`` is not given.
        optimizer: an optimiser to sweep with; its state is restored afterwards too.
        param_groups: parameter groups for a built optimiser (their lr ratios are kept).
        transfer: puts a batch on the device (a data source's ``transfer``).
        start_lr, end_lr, num_steps: the sweep; it stops early when the loss diverges.
        rule: how to suggest a learning rate (see :func:`suggest`).
    """
    require(0 < start_lr < end_lr, f"the sweep needs 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    require(num_steps >= 5, f"num_steps must be at least 5, got {num_steps}")
    require(rule in LR_RULES, f"unknown lr-finder rule {rule!r}; use one of {', '.join(LR_RULES)}")
    device = device or next((p.device for p in model.parameters()), torch.device("cpu"))
    saved = Saved.take(model, optimizer)
    opt = optimizer or build_optimizer(param_groups if param_groups is not None else model, optim or OptimConfig())
    ratios = [group["lr"] / opt.param_groups[0]["lr"] for group in opt.param_groups]
    lrs: list[float] = []
    losses: list[float] = []
    stop_reason = "the loss did not diverge up to end_lr: a larger end_lr may suggest more"
    with kept_random_state():
        try:
            model.train()
            objective.begin_epoch(epoch=0)
            for step, batch in zip(range(num_steps), _cycle(batches, seed=seed)):
                lr = start_lr * (end_lr / start_lr) ** (step / (num_steps - 1))
                for group, ratio in zip(opt.param_groups, ratios):
                    group["lr"] = lr * ratio
                loss = _step(model, objective, opt, transfer(batch, device=device, channels_last=False, train=True))
                lrs.append(lr)
                losses.append(loss)
                if _diverged(losses):
                    stop_reason = f"the loss diverged at lr {lr:.3g}"
                    break
        finally:
            saved.put_back(model, optimizer)
    smoothed = centered_mean(losses)
    suggestion, words, picks = suggest(lrs, smoothed, rule=rule)
    return LRFinderResult(lrs, losses, smoothed, suggestion, words, picks, stop_reason)


def _cycle(batches: Any, *, seed: int) -> Iterator[Any]:
    epochs = as_epoch_batches(batches, seed=seed)
    epoch = 0
    while True:
        epochs.set_epoch(epoch)
        empty = True
        for batch in epochs.iter_from(0):
            empty = False
            yield batch
        if empty:
            return
        epoch += 1


def _step(model: nn.Module, objective: Objective, opt: torch.optim.Optimizer, batch: Any) -> float:
    out = objective.train_step(model, batch)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    opt.step()
    return float(out.loss.detach())


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """The bias-corrected exponential moving average of ``losses`` (non-finite values count as infinite)."""
    average, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * (loss if math.isfinite(loss) else math.inf)
        out.append(average / (1 - beta**i))
    return out


def centered_mean(losses: list[float]) -> list[float]:
    """Each loss averaged with its neighbours on both sides (about 4% of the sweep each way).

    The suggestion reads this rather than the moving average that decides when
    to stop: a moving average lags behind the lr, which would move the
    suggestion to larger learning rates.
    """
    half = max(2, len(losses) // 25)
    values = [v if math.isfinite(v) else math.inf for v in losses]
    return [sum(window) / len(window) for window in
            (values[max(0, i - half): i + half + 1] for i in range(len(values)))]  # fmt: skip


def _diverged(losses: list[float]) -> bool:
    smoothed = smooth(losses)
    return not math.isfinite(losses[-1]) or (len(smoothed) > 1 and smoothed[-1] > DIVERGE * min(smoothed))
