"""The model registry: every network by a unique name.

Builders are keyword-only functions that return an ``nn.Module``. Each entry
also records its task family (which forward contract it follows), the input
it expects, and a default training recipe, so the command line can train any
model from its name alone:

- ``classifier``: images ``(N, C, H, W)`` -> logits ``(N, num_classes)``;
- ``language-model``: token ids ``(N, T)`` (+ state) -> logits ``(N, T, V)`` (+ state);
- ``seq2seq``: (source, target-in, source lengths) -> logits ``(N, T, V)``;
- ``regression``: features ``(N, D)`` -> predictions ``(N, 1)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from divekit.errors import ConfigError, unknown_name

FAMILIES = ("classifier", "language-model", "seq2seq", "regression")


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model name."""

    name: str
    builder: Callable[..., nn.Module]
    family: str
    description: str
    input_size: tuple[int, ...] | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, inspect.Parameter]:
        """The builder's keyword options, by name."""
        return dict(inspect.signature(self.builder).parameters)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    family: str,
    input_size: tuple[int, ...] | None = None,
    recipe: dict[str, Any] | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a builder under ``name``.

    Args:
        name: the unique model name used by ``create_model`` and the CLI.
        family: one of :data:`FAMILIES`.
        input_size: the input the model expects, e.g. ``(1, 28, 28)``.
        recipe: default training settings (``lr``, ``batch_size``, ``epochs``,
            ``optimizer``, ``init``, ...), as the book trains this model.
        description: one line for ``divekit models``; defaults to the
            first line of the builder's docstring.

    Raises:
        ValueError: the name is taken or the family is unknown.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name].builder.__module__}")
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelEntry(
            name=name,
            builder=builder,
            family=family,
            description=description or (doc[0] if doc else ""),
            input_size=input_size,
            recipe=dict(recipe or {}),
        )
        return builder

    return decorate


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names get a suggestion."""
    if name not in _REGISTRY:
        raise unknown_name("model", name, _REGISTRY)
    return _REGISTRY[name]


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally only those of one family."""
    return sorted(n for n, e in _REGISTRY.items() if family is None or e.family == family)


def create_model(name: str, **options: Any) -> nn.Module:
    """Build the model called ``name`` with keyword ``options``.

    Builders raise ``ValueError`` for option values they cannot build
    (e.g. an image too small for the network); that becomes a ConfigError.

    Raises:
        ConfigError: unknown name, an option the builder does not take, or a
            value it refuses.
    """
    entry = get_model_entry(name)
    accepted = entry.options()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options are: {', '.join(accepted) or 'none'}"
        )
    try:
        return entry.builder(**options)
    except ValueError as err:
        raise ConfigError(f"model {name!r}: {err}") from err


def supported_options(name: str, candidates: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``candidates`` that model ``name``'s builder accepts.

    The trainer uses it to pass facts about the data (``num_classes``,
    ``in_channels``, ``vocab_size``) only to models that take them.
    """
    accepted = get_model_entry(name).options()
    return {k: v for k, v in candidates.items() if k in accepted}
