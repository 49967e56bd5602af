"""Figures written to PNG: training curves and image grids.

Uses ``matplotlib.figure.Figure`` directly (no pyplot global state), so it
works headless, in threads and in notebooks; files are written atomically.
"""

from __future__ import annotations

import io as _io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from divekit.io import atomic_write_bytes


def _save(fig: Any, path: str | os.PathLike, dpi: int = 100) -> None:
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike, *, keys: Sequence[str],
                best_epoch: int | None = None) -> None:  # fmt: skip
    """Plot the metrics ``keys`` of each epoch record against the epoch number.

    Losses and perplexities go on the left axis, accuracies (0-1) on the right;
    ``best_epoch`` (the selected checkpoint) is marked with a vertical line.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    right = None
    epochs = [r["epoch"] for r in history]
    for key in keys:
        values = [r.get(key) for r in history]
        if all(v is None for v in values):
            continue
        on_right = key.endswith("_acc")
        if on_right and right is None:
            right = ax.twinx()
            right.set_ylabel("accuracy")
            right.set_ylim(0, 1)
        axis = right if on_right else ax
        style = {"train": "-", "val": "-."}.get(key.split("_")[0], "--")
        axis.plot(epochs, [np.nan if v is None else v for v in values], style, marker=".", label=key)
    if best_epoch is not None:
        ax.axvline(best_epoch, color="0.5", linestyle=":", label=f"selected (epoch {best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()
    if right is not None:
        more = right.get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    ax.legend(*handles, loc="best")
    _save(fig, path)


def image_grid(
    images: np.ndarray,
    titles: Sequence[str],
    path: str | os.PathLike,
    *,
    columns: int = 8,
) -> None:
    """Save uint8 images ``(N, C, H, W)`` (C = 1 or 3) in a grid with a title each."""
    from matplotlib.figure import Figure

    n = len(images)
    columns = min(columns, n)
    rows = -(-n // columns)
    fig = Figure(figsize=(1.4 * columns, 1.6 * rows))
    for i, (image, title) in enumerate(zip(images, titles)):
        ax = fig.add_subplot(rows, columns, i + 1)
        if image.shape[0] == 1:
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=255)
        else:
            ax.imshow(np.transpose(image, (1, 2, 0)))
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    _save(fig, path)


def plot_zipf(frequencies: dict[int, Sequence[int]], path: str | os.PathLike, *, title: str = "") -> None:
    """Log-log plot of n-gram frequency against rank, one line per ``n`` (Zipf's law, notes §6.3)."""
    from matplotlib.figure import Figure

    names = {1: "unigram", 2: "bigram", 3: "trigram"}
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for n, counts in sorted(frequencies.items()):
        ax.plot(np.arange(1, len(counts) + 1), counts, label=names.get(n, f"{n}-gram"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("frequency")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best")
    _save(fig, path)


def plot_forecast(result: Any, path: str | os.PathLike) -> None:
    """Two panels from a :class:`~divekit.tasks.regression.Forecast` (notes §6.1).

    Top: the data with the one-step and the multistep predictions. Bottom:
    the k-step-ahead predictions, where the errors accumulate with ``k``.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(*result.data, lw=0.8, color="0.6", label="data")
    top.plot(*result.one_step, lw=1, label="1-step preds")
    top.plot(*result.multistep, lw=1, label="multistep preds")
    for k, curve in sorted(result.k_step.items()):
        bottom.plot(*curve, lw=1, label=f"{k}-step preds")
    for ax in (top, bottom):
        ax.set_ylabel("x")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    bottom.set_xlabel("time")
    _save(fig, path)
