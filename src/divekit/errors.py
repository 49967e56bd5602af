"""User-facing errors: one clear line that names the problem and the fix.

Library code raises :class:`DivekitError` (or a subclass) for anything caused
by the user's input: a bad name, a missing or corrupt file, an impossible
hyperparameter. The command line prints the message on one line, without a
traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

import difflib
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


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> DivekitError:
    """Build the error for an unknown ``kind`` called ``name``.

    The message lists the valid names and suggests the closest one.
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}.")
