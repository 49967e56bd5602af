"""One registry class for everything found by name: models, data sets and tasks.

A :class:`Registry` maps unique names to entries. Registering a name that
is taken refuses, naming both modules, except when the same module
registers it again: re-running a notebook cell (whose module is
``__main__``) or re-importing a file replaces the entry instead of failing.
Looking up an unknown name raises one :class:`~divekit.errors.ConfigError`
that suggests the closest valid name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from divekit.choices import TASKS
from divekit.errors import unknown_name

E = TypeVar("E")



class Registry(Generic[E]):
    """Named entries of one kind (``"model"``, ``"data set"``...), each registered by one module.

    Args:
        kind: what an entry is, for messages (``unknown model 'x'``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, E] = {}
        self._modules: dict[str, str] = {}

    def add(self, name: str, entry: E, *, module: str) -> E:
        """Register ``entry`` as ``name`` on behalf of ``module``; return it.

        Raises:
            ValueError: ``name`` is already registered by another module.
        """
        owner = self._modules.get(name)
        if owner is not None and owner != module:
            raise ValueError(f"{self.kind} name {name!r} is already registered by {owner}; "
                             f"{module} cannot register it too (choose another name)")  # fmt: skip
        self._entries[name] = entry
        self._modules[name] = module
        return entry

    def get(self, name: str) -> E:
        """The entry called ``name``; an unknown name raises ConfigError with a suggestion."""
        if name not in self._entries:
            raise unknown_name(self.kind, name, self._entries)
        return self._entries[name]

    def module_of(self, name: str) -> str | None:
        """The module that registered ``name`` (``None`` if nothing did)."""
        return self._modules.get(name)

    def names(self, keep: Callable[[E], bool] | None = None) -> list[str]:
        """Registered names, sorted, optionally only those whose entry passes ``keep``."""
        return sorted(n for n, e in self._entries.items() if keep is None or keep(e))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def caller_module(fn: Any) -> str:
    """The module a decorated function was defined in (``__main__`` in a notebook or script)."""
    return getattr(fn, "__module__", None) or "__main__"


def check_task(task: str) -> str:
    """``task`` if it is one of :data:`TASKS`, else ``ValueError`` naming the valid ones."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return task
