"""What training returns: the history of epoch records, the best one, why it stopped, where it wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn


@dataclass
class RunResult:
    """The outcome of :func:`divekit.fit`, :func:`divekit.runs.train` and :meth:`Trainer.fit`.

    Attributes:
        history: one record per epoch: ``epoch``, ``train_*``, ``val_*``, ``test_*`` metrics, ``lr``, timings.
        best: the record of the epoch with the best monitored validation metric,
            or ``None`` when nothing was monitored (no validation split): then no
            "best" is claimed and :attr:`final` is what counts.
        stop_reason: ``completed``, ``early stopping: ...`` or ``interrupted``.
        out_dir: the run folder, or ``None`` when everything stayed in memory.
        monitor: the metric that chose ``best`` (e.g. ``val_acc``), or ``None``.
        config: the run's configuration (a :class:`~divekit.runs.config.RunConfig`), when there is one.
        model: the trained model (the same object that was given, for :func:`divekit.fit`).
    """

    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    stop_reason: str
    out_dir: Path | None
    monitor: str | None = None
    config: Any = None
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def final(self) -> dict[str, Any]:
        """The last epoch's record."""
        return self.history[-1] if self.history else {}

    def _repr_html_(self) -> str:
        """How a notebook shows the result: the last and selected epochs' metrics, the curves, the run folder."""
        from divekit.engine.display import result_html

        return result_html(self)
