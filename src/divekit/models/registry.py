"""The model registry: every network by a unique name.

One decorated builder function per name (``grep "def resnet18"`` finds it).
Builders are keyword-only functions that return an ``nn.Module`` and raise
``ValueError`` for option values they cannot build (an image too small for
the network...); :func:`create_model` turns that into a one-line error.
Each entry also records the task its forward contract serves, the input it
expects and how the book trains it, so the command line can train any model
from its name alone:

- ``classification``: images ``(N, C, H, W)`` -> logits ``(N, num_classes)``;
- ``language-model``: token ids ``(N, T)`` (+ state) -> logits ``(N, T, V)`` (+ state);
- ``seq2seq``: (source, target-in, source lengths) -> logits ``(N, T, V)``;
- ``regression``: features ``(N, D)`` -> predictions ``(N, 1)``.

Registering a name again from the same module (a re-run notebook cell)
replaces the entry; another module cannot take a name that is in use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from divekit.errors import ConfigError
from divekit.choices import TASKS
from divekit.registry import Registry, caller_module, check_task


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model name."""

    name: str
    builder: Callable[..., nn.Module]
    task: str
    description: str
    input_size: tuple[int, ...] | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    data_recipes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options(self) -> dict[str, inspect.Parameter]:
        """The builder's keyword options, by name."""
        return dict(inspect.signature(self.builder).parameters)


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(
    name: str,
    *,
    task: str,
    input_size: tuple[int, ...] | None = None,
    recipe: dict[str, Any] | None = None,
    data_recipes: dict[str, dict[str, Any]] | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a builder function under ``name``.

    Args:
        name: the unique model name used by :func:`create_model` and the CLI.
        task: one of :data:`divekit.registry.TASKS` (the forward contract).
        input_size: the input the model expects, e.g. ``(1, 28, 28)``.
        recipe: default training settings as dotted config keys
            (``"optim.lr"``, ``"data.batch_size"``...), as the book trains it.
        data_recipes: settings for this model on one data set, by its name,
            layered over that data set's own recipe: what makes, say, AlexNet
            learn on the embedded 8x8 digits (a smaller input, a gentler rate).
        description: one line for ``divekit models``; defaults to the first
            line of the builder's docstring.

    Raises:
        ValueError: the task is unknown, or another module holds the name.
    """
    check_task(task)

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = (builder.__doc__ or "").strip().splitlines()
        entry = ModelEntry(name, builder, task, description or (doc[0] if doc else ""), input_size, dict(recipe or {}),
                           {data: dict(settings) for data, settings in (data_recipes or {}).items()})  # fmt: skip
        MODELS.add(name, entry, module=caller_module(builder))
        return builder

    return decorate


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names get a suggestion."""
    return MODELS.get(name)


def list_models(task: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally only those of one task."""
    if task is not None and task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    return MODELS.names(None if task is None else lambda e: e.task == task)


def create_model(name: str, **options: Any) -> nn.Module:
    """Build the model called ``name`` with keyword ``options``.

    Raises:
        ConfigError: unknown name, an option the builder does not take, or a
            value it refuses (its ``ValueError``).
    """
    entry = get_model_entry(name)
    return call_builder(entry.builder, options, what=f"model {name!r}")


def call_builder(builder: Callable[..., nn.Module], options: dict[str, Any], *, what: str) -> nn.Module:
    """``builder(**options)``, with unknown options and refused values as one ConfigError each."""
    accepted = accepted_options(builder)
    unknown = sorted(set(options) - set(accepted)) if accepted is not None else []
    if unknown:
        raise ConfigError(f"{what} has no option {', '.join(map(repr, unknown))}; "
                          f"its options are: {', '.join(accepted or []) or 'none'}")  # fmt: skip
    try:
        model = builder(**options)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{what}: {err}") from err
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{what} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def accepted_options(builder: Callable[..., Any]) -> list[str] | None:
    """The keyword options ``builder`` accepts (``None`` when it takes ``**kwargs``: anything)."""
    try:
        params = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def supported_options(builder_or_name: str | Callable[..., Any], candidates: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``candidates`` that a builder accepts.

    The run layer uses it to pass facts about the data (``num_classes``,
    ``in_channels``, ``vocab_size``) only to models that take them.
    """
    builder = get_model_entry(builder_or_name).builder if isinstance(builder_or_name, str) else builder_or_name
    accepted = accepted_options(builder)
    return dict(candidates) if accepted is None else {k: v for k, v in candidates.items() if k in accepted}
