"""User-facing errors: one clear line that names the problem and the fix.

Library code raises :class:`DivekitError` (or a subclass) for anything caused
by the user's input: a bad name, a missing or corrupt file, an impossible
hyperparameter. The command line prints the message on one line, without a
traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class DivekitError(Exception):
    """An error the user can fix; ``str(err)`` is the whole message."""

    exit_code = 2


class ConfigError(DivekitError):
    """An invalid option, hyperparameter or configuration file."""


class DataError(DivekitError):
    """A data set that is missing, corrupt or malformed."""


class CheckpointError(DivekitError):
    """A checkpoint or run folder that cannot be used."""


class NonFiniteLossError(DivekitError):
    """Training produced NaN or Inf; the last good checkpoint was kept."""

    exit_code = 3


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name a typo most likely meant, or ``None``.

    Prefers a name that starts like ``name`` (``lr_rate`` -> ``lr``), then the
    most similar spelling.
    """
    valid = list(valid)
    lowered = {v.lower(): v for v in valid}
    if name.lower() in lowered:
        return lowered[name.lower()]
    head = re.split(r"[-_.]", name.lower())[0]
    prefixed = [v for v in valid if re.split(r"[-_.]", v.lower())[0] == head]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(name, prefixed or valid, n=1, cutoff=0.5)
    return close[0] if close else None


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> DivekitError:
    """Build the error for an unknown ``kind`` called ``name``.

    The message lists the valid names and suggests the closest one.
    """
    valid = sorted(valid)
    close = closest(name, valid)
    hint = f" Did you mean {close!r}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}.")
