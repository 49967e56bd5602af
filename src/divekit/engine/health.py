"""Non-finite steps, counted on the device and reported when the trainer reads its flags.

Each step yields a device flag: were the loss and the gradient norm finite?
A bad step is skipped (see :func:`divekit.engine.optim.optimizer_step`);
:class:`StepHealth` counts them and remembers the first one without reading
anything on the host, and :func:`report_nonfinite` decides, at a sync, between
a warning (within ``train.skip_nonfinite``) and stopping the run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from divekit.errors import NonFiniteLossError


class StepHealth:
    """Device counters: bad steps since the last read, and the step index of the first."""

    def __init__(self, device: torch.device) -> None:
        self.bad = torch.zeros((), dtype=torch.long, device=device)
        self.first = torch.full((), -1, dtype=torch.long, device=device)
        self.index = torch.zeros((), dtype=torch.long, device=device)

    def record(self, ok: torch.Tensor) -> None:
        """Count one step whose flag is ``ok``."""
        bad = ~ok
        self.first = torch.where(bad & (self.first < 0), self.index, self.first)
        self.bad += bad.long()
        self.index += 1

    def take(self) -> tuple[int, int]:
        """``(bad steps, global index of the first)`` since the last call (two host reads), then reset."""
        bad, first = int(self.bad), int(self.first)
        if bad:
            self.bad.zero_()
            self.first.fill_(-1)
        return bad, first


def report_nonfinite(*, bad: int, first_step: int, total: int, allowed: int, epoch: int, epoch_start_step: int,
                     checkpoints: bool, log: Callable[[str], None]) -> None:  # fmt: skip
    """Warn about ``bad`` skipped steps while ``total`` stays within ``allowed``; otherwise stop the run."""
    batch = first_step - epoch_start_step
    where = f"epoch {epoch + 1}, batch {batch + 1} (step {first_step + 1})" if batch >= 0 else f"step {first_step + 1}"
    if total <= allowed:
        log(f"warning: non-finite loss or gradients at {bad} step(s) from {where}; skipped ({total} of {allowed} allowed)")
        return
    kept = "; the weights were left as they were before it and the last checkpoint is kept" if checkpoints else ""
    raise NonFiniteLossError(
        f"non-finite loss or gradients (NaN or Inf) at {where}{kept}. Lower optim.lr, clip gradients "
        f"(optim.clip_grad), or tolerate a few bad steps with train.skip_nonfinite"
    )
