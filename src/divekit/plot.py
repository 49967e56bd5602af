"""Figures written to PNG: training curves (one panel per metric) and image grids.

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


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """The PNG bytes of a figure (for a file, an HTML page or a notebook)."""
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _save(fig: Any, path: str | os.PathLike, dpi: int = 100) -> None:
    atomic_write_bytes(path, figure_png(fig, dpi))


# Train, validation and test differ in colour *and* line style (and marker), so they stay apart in print.
SPLIT_STYLES = {
    "train": {"color": "C0", "linestyle": "-", "marker": "o", "label": "train"},
    "val": {"color": "C1", "linestyle": "--", "marker": "s", "label": "validation"},
    "test": {"color": "C2", "linestyle": ":", "marker": "^", "label": "test"},
}
PANEL_TITLES = {"loss": "loss", "acc": "accuracy", "ppl": "perplexity", "bleu": "BLEU"}


def curve_panels(history: Sequence[dict[str, Any]]) -> list[str]:
    """The metrics the history holds, one panel each: loss, accuracy, perplexity, BLEU, then any others."""
    from divekit.engine.progress import metric_items

    names = list(dict.fromkeys(key.split("_", 1)[1] for record in history for key, _ in metric_items(record)))
    known = [n for n in PANEL_TITLES if n in names]
    return known + sorted(n for n in names if n not in PANEL_TITLES)


def curves_figure(history: Sequence[dict[str, Any]], *, best_epoch: int | None = None,
                  monitor: str | None = None) -> Any:  # fmt: skip
    """A figure of the training curves: one panel per metric with its own axis, one line per split.

    Records may have fractional ``epoch`` values (points within an epoch, as
    the live notebook display draws them). ``best_epoch`` (the checkpoint
    chosen on ``monitor``) is marked on every panel.
    """
    from matplotlib.figure import Figure

    panels = curve_panels(history) or ["loss"]
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(3.8 * columns, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    epochs = [r["epoch"] for r in history]
    for ax, name in zip(axes, panels):
        _draw_panel(ax, history, epochs, name)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="0.4", linestyle="-.", linewidth=1,
                       label=f"selected: epoch {best_epoch}" + (f" ({monitor})" if monitor else ""))  # fmt: skip
    for ax in axes[len(panels):]:
        ax.axis("off")
    axes[0].legend(loc="best", fontsize=8)
    return fig


def _draw_panel(ax: Any, history: Sequence[dict[str, Any]], epochs: list[float], name: str) -> None:
    for split, style in SPLIT_STYLES.items():
        values = [r.get(f"{split}_{name}") for r in history]
        if any(v is not None for v in values):
            ax.plot(epochs, [np.nan if v is None else v for v in values], markersize=4, **style)
    from matplotlib.ticker import MaxNLocator

    ax.set_title(PANEL_TITLES.get(name, name), fontsize=10)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if name == "acc":
        ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)


def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike, *, best_epoch: int | None = None,
                monitor: str | None = None) -> None:  # fmt: skip
    """Save :func:`curves_figure` as a PNG (a run folder's ``curves.png``)."""
    _save(curves_figure(history, best_epoch=best_epoch, monitor=monitor), path)


def image_grid(
    images: np.ndarray,
    titles: Sequence[str],
    path: str | os.PathLike,
    *,
    columns: int = 8,
) -> None:
    """Save uint8 images ``(N, C, H, W)`` (C = 1 or 3) in a grid with a title each."""
    _save(image_grid_figure(images, titles, columns=columns), path)


def image_grid_figure(images: np.ndarray, titles: Sequence[str], *, columns: int = 8,
                      title_colors: Sequence[str] | None = None) -> Any:  # fmt: skip
    """A grid of uint8 images ``(N, C, H, W)`` (C = 1 or 3), a title (in its own colour, if given) on each."""
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
        ax.set_title(title, fontsize=8, color=title_colors[i] if title_colors else "black")
        ax.axis("off")
    return fig


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


def lr_finder_figure(result: Any) -> Any:
    """Loss against learning rate (log scale) from an :class:`~divekit.engine.lr_find.LRFinderResult`.

    The raw losses are faint, the smoothed ones solid; the suggested learning
    rate is marked and named with the rule that picked it.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(result.lrs, result.losses, color="0.7", linewidth=0.8, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", label="smoothed loss")
    if result.suggestion is not None:
        ax.axvline(result.suggestion, color="C3", linestyle="--", label=f"suggested lr {result.suggestion:.3g}")
        ax.set_title(result.rule, fontsize=9)
    finite = [v for v in result.smoothed if np.isfinite(v)]
    if finite:  # a diverged tail would squash the interesting part
        ax.set_ylim(min(finite) * 0.95 if min(finite) > 0 else None, min(max(finite), 3 * finite[0]) * 1.05)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=8)
    return fig
