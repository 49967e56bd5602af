"""The concepts ``divekit check`` knows, one module per chapter topic of the notes.

Each module lists its :class:`~divekit.check.model.Concept` s in ``CONCEPTS``;
this registry gathers them in the notes' order and finds one by name, or
infers it from the name of the learner's object (``corr2d_multi_in``).
"""

from __future__ import annotations

import re

from divekit.check.catalogue import attention, basics, conv, metrics, multihead, norm, pooling, recurrent, text
from divekit.check.model import Concept
from divekit.errors import ConfigError, unknown_name

_MODULES = (basics, conv, pooling, norm, text, recurrent, metrics, attention, multihead)


def _section_key(concept: Concept) -> tuple[int, ...]:
    return tuple(int(part) for part in concept.section.split("."))


CONCEPTS: dict[str, Concept] = {
    c.name: c for c in sorted((c for module in _MODULES for c in module.CONCEPTS), key=_section_key)
}


def get_concept(name: str) -> Concept:
    """The concept called ``name`` (``corr2d``, ``batch-norm``...); one-line error naming the closest."""
    key = name.replace("_", "-").lower()
    if key in CONCEPTS:
        return CONCEPTS[key]
    raise unknown_name("concept", name, CONCEPTS)


def infer_concept(object_name: str) -> Concept:
    """The concept an object's name implies (``corr2d_multi_in`` -> ``corr2d-multi-in``); error if none."""
    key = object_name.replace("_", "-").lower()
    for concept in CONCEPTS.values():
        names = {concept.name} | {_normal(a) for a in concept.aliases}
        if key in names or _normal(object_name) in names:
            return concept
    raise ConfigError(f"cannot tell which concept {object_name!r} implements from its name; say which, "
                      f"one of: {', '.join(CONCEPTS)}")


def _normal(name: str) -> str:
    return re.sub(r"[_\s]+", "-", name).lower()
