"""Figures that interpret a trained classifier: the confusion matrix and the accuracy of each class.

Like :mod:`divekit.plot`, they draw on ``matplotlib.figure.Figure`` directly
(no pyplot state); the caller saves them (:func:`divekit.plot._save`) or a
notebook shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str]) -> Any:
    """The confusion matrix: true classes down, predicted classes across, each row's counts written in."""
    from matplotlib.figure import Figure

    k = len(class_names)
    side = max(4.0, 0.5 * k + 2)
    fig = Figure(figsize=(side, side * 0.9), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    ticks = range(k)
    ax.set_xticks(ticks, class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix", fontsize=10)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > threshold else "black")  # fmt: skip
    fig.colorbar(image, ax=ax, shrink=0.7)
    return fig


def per_class_figure(class_names: Sequence[str], accuracies: Sequence[float], counts: Sequence[int]) -> Any:
    """A horizontal bar per class: its accuracy, with the number of examples it rests on."""
    from matplotlib.figure import Figure

    k = len(class_names)
    fig = Figure(figsize=(5.5, max(2.5, 0.3 * k + 1)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(k)
    ax.barh(y, accuracies, color="C0")
    for i, (acc, n) in enumerate(zip(accuracies, counts)):
        ax.text(min(acc, 1.0) + 0.01, i, f"{acc:.2f} (n={n})", va="center", fontsize=7)
    ax.set_yticks(y, class_names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.2)
    ax.set_xlabel("accuracy")
    ax.set_title("accuracy per class", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return fig
