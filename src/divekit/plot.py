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


def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike, *, keys: Sequence[str]) -> None:
    """Plot the metrics ``keys`` of each epoch record against the epoch number.

    Losses and perplexities go on the left axis, accuracies (0-1) on the right.
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
        style = "--" if key.startswith("test") else "-"
        axis.plot(epochs, [np.nan if v is None else v for v in values], style, marker=".", label=key)
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
