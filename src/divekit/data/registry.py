"""The data-set registry: every data set by a unique name.

A loader takes keyword arguments ``data_dir``, ``download`` and ``mirror``
(embedded data sets ignore them) and returns a data object whose ``kind``
tells the trainer which task it feeds: ``image-classification``, ``text``
(language modelling), ``translation`` (sequence to sequence) or
``sequence`` (regression on a series).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from divekit.errors import unknown_name


@dataclass(frozen=True)
class DatasetEntry:
    """What the registry knows about one data set."""

    name: str
    kind: str
    loader: Callable[..., Any]
    description: str
    embedded: bool = False
    recipe: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(
    name: str,
    *,
    kind: str,
    description: str,
    embedded: bool = False,
    recipe: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a data-set loader under ``name``.

    ``recipe`` holds training settings (dotted config keys) that suit this
    data set better than the model's own defaults, e.g. more epochs for a
    small data set. Refuses a name that is already taken.
    """

    def decorate(loader: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"data set name {name!r} is already registered")
        _REGISTRY[name] = DatasetEntry(name, kind, loader, description, embedded, dict(recipe or {}))
        return loader

    return decorate


def get_dataset_entry(name: str) -> DatasetEntry:
    """The registry entry for ``name``; unknown names get a suggestion."""
    if name not in _REGISTRY:
        raise unknown_name("data set", name, _REGISTRY)
    return _REGISTRY[name]


def list_datasets(kind: str | None = None) -> list[str]:
    """Registered data-set names, sorted, optionally only those of one kind."""
    return sorted(n for n, e in _REGISTRY.items() if kind is None or e.kind == kind)


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    mirror: str | None = None,
) -> Any:
    """Load data set ``name`` (see the module docstring for the arguments)."""
    return get_dataset_entry(name).loader(data_dir=data_dir, download=download, mirror=mirror)
