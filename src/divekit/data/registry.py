"""The data-set registry: every data set by a unique name.

A loader takes keyword arguments ``data_dir``, ``download`` and ``mirror``
(embedded data sets ignore them) and returns a data object. Each entry names
the task its data serves (:data:`divekit.registry.TASKS`): images for
``classification``, a text for ``language-model``, sentence pairs for
``seq2seq``, a series for ``regression``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from divekit.registry import Registry, caller_module, check_task


@dataclass(frozen=True)
class DatasetEntry:
    """What the registry knows about one data set."""

    name: str
    task: str
    loader: Callable[..., Any]
    description: str
    embedded: bool = False
    recipe: dict[str, Any] = field(default_factory=dict)


DATASETS: Registry[DatasetEntry] = Registry("data set")


def register_dataset(
    name: str,
    *,
    task: str,
    description: str,
    embedded: bool = False,
    recipe: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a data-set loader under ``name``.

    ``recipe`` holds training settings (dotted config keys) that suit this
    data set better than the model's own defaults, e.g. more epochs for a
    small data set. A name taken by another module is refused.
    """
    check_task(task)

    def decorate(loader: Callable[..., Any]) -> Callable[..., Any]:
        entry = DatasetEntry(name, task, loader, description, embedded, dict(recipe or {}))
        DATASETS.add(name, entry, module=caller_module(loader))
        return loader

    return decorate


def get_dataset_entry(name: str) -> DatasetEntry:
    """The registry entry for ``name``; unknown names get a suggestion."""
    return DATASETS.get(name)


def list_datasets(task: str | None = None) -> list[str]:
    """Registered data-set names, sorted, optionally only those of one task."""
    return DATASETS.names(None if task is None else lambda e: e.task == task)


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    mirror: str | None = None,
) -> Any:
    """Load data set ``name`` (see the module docstring for the arguments)."""
    return get_dataset_entry(name).loader(data_dir=data_dir, download=download, mirror=mirror)
