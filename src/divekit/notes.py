"""One-line notes to the user about what divekit inferred or did (a data set guessed, images skipped...).

Notes go to stderr, from the main process only (under ``torchrun`` every
process builds the same run and would repeat them). They never name a flag:
the library speaks in config keys and plain words.
"""

from __future__ import annotations

import os
import sys


def note(message: str) -> None:
    """Print ``message`` on stderr, once per run (the process of rank 0)."""
    if os.environ.get("RANK", "0") == "0":
        print(f"divekit: {message}", file=sys.stderr)
