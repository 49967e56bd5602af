"""Attention figures written to PNG: weight heatmaps and kernel-regression fits.

Like :mod:`divekit.plot`, it draws on ``matplotlib.figure.Figure`` directly
(no pyplot state) and writes files atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from divekit.plot import _save


def attention_heatmaps(
    maps: Sequence[np.ndarray],
    path: str | os.PathLike,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    layer_names: Sequence[str] | None = None,
    xlabel: str = "keys",
    ylabel: str = "queries",
) -> None:
    """Save a grid of heatmaps: one row per layer, one column per head.

    Args:
        maps: one ``(heads, queries, keys)`` array of weights per layer.
        row_labels, col_labels: tick labels of queries and keys (e.g. tokens).
        layer_names: a title per layer (default ``layer 1``, ``layer 2``...).
    """
    from matplotlib.figure import Figure

    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    rows, heads = len(maps), max(m.shape[0] for m in maps)
    height, width = maps[0].shape[1:]
    cell = 0.35 if row_labels is not None else 0.08
    fig = Figure(figsize=(max(2.5, heads * (width * cell + 1.0)), max(2.0, rows * (height * cell + 1.0))),
                 layout="constrained")  # fmt: skip
    axes = fig.subplots(rows, heads, squeeze=False)
    for layer, weights in enumerate(maps):
        name = layer_names[layer] if layer_names else f"layer {layer + 1}"
        for head in range(heads):
            ax = axes[layer][head]
            if head >= weights.shape[0]:
                ax.axis("off")
                continue
            image = ax.imshow(weights[head], cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_title(f"{name}, head {head + 1}" if heads > 1 else name, fontsize=8)
            _ticks(ax, row_labels, col_labels)
            ax.set_xlabel(xlabel, fontsize=7)
            ax.set_ylabel(ylabel, fontsize=7)
    fig.colorbar(image, ax=axes, shrink=0.6)
    _save(fig, path)


def save_attention_maps(maps: Any, out: str | os.PathLike) -> list[Path]:
    """Save a translation's :class:`~divekit.inference.translate.AttentionMaps` as PNGs in ``out``.

    ``encoder-self-attention.png`` (source tokens attending to each other) and
    ``decoder-cross-attention.png`` (each output token's weights over the
    source, notes §6.11-§6.13), for the parts the model has; returns the paths written.
    """
    figures = (("encoder-self-attention", "encoder", maps.encoder, maps.source_tokens, "source"),
               ("decoder-cross-attention", "decoder", maps.cross, maps.output_tokens, "output"))  # fmt: skip
    written = []
    for name, part, layers, queries, side in figures:
        if not layers:
            continue
        path = Path(out) / f"{name}.png"
        attention_heatmaps([m.numpy() for m in layers], path, row_labels=queries, col_labels=maps.source_tokens,
                           layer_names=[f"{part} layer {i + 1}" for i in range(len(layers))],
                           xlabel="source (keys)", ylabel=f"{side} (queries)")  # fmt: skip
        written.append(path)
    return written


def _ticks(ax, row_labels: Sequence[str] | None, col_labels: Sequence[str] | None) -> None:
    if col_labels is not None:
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=7)
    if row_labels is not None:
        ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7)


def regression_fit(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    curves: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    title: str = "",
) -> None:
    """Plot named curves over ``x_test`` (the truth and predictions) and the training points."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
    for label, values in curves.items():
        ax.plot(x_test, values, "--" if label == "truth" else "-", label=label)
    ax.plot(x_train, y_train, "o", alpha=0.5, markersize=4, label="training points")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)
