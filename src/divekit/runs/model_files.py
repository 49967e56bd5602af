"""Models defined in a user's Python file (``divekit train path/to/file.py:NAME``), and when to import them again.

A run trained from a file records the file's absolute path and SHA-256. A
later command on that run (evaluate, predict, export...) imports the model
from that path only if both hold:

- the file still has the recorded hash (an edited or replaced file is refused);
- this user, on this machine, trained from that very file (path and hash),
  as recorded in a list kept outside every run folder
  (``$DIVEKIT_HOME/trusted-model-files.json``, default ``~/.cache/divekit``).

So nothing stored inside a run folder is ever executed by itself: a run
folder copied from elsewhere, or one whose ``config.json`` was edited to
point at a file planted somewhere, gets one line asking to name the model
file explicitly (``model_file=...``), which is the user's own decision.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from divekit.errors import ConfigError
from divekit.io import atomic_write_json
from divekit.userfile import UserObject, file_sha256, load_object

TRUST_FILE = "trusted-model-files.json"


class ModelFileChanged(UserWarning):
    """A model file named explicitly differs from the one the run was trained with."""


def divekit_home() -> Path:
    """Where divekit keeps per-user state: ``$DIVEKIT_HOME``, else ``$XDG_CACHE_HOME/divekit`` or ``~/.cache/divekit``."""
    if os.environ.get("DIVEKIT_HOME"):
        return Path(os.environ["DIVEKIT_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "divekit"


def _trusted() -> list[dict[str, str]]:
    try:
        entries = json.loads((divekit_home() / TRUST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def trust(loaded: UserObject) -> None:
    """Record that this user trained from ``loaded``'s file (its path and hash)."""
    entry = {"path": str(loaded.path), "sha256": loaded.sha256}
    entries = _trusted()
    if entry not in entries:
        atomic_write_json(divekit_home() / TRUST_FILE, [*entries, entry])


def is_trusted(path: str, sha256: str) -> bool:
    return {"path": path, "sha256": sha256} in _trusted()


def load_model_file(spec: str) -> UserObject:
    """Import ``path/to/file.py:NAME`` for training, and remember it as this user's own."""
    loaded = load_object(spec)
    if not callable(loaded.obj):
        raise ConfigError(f"{spec}: {loaded.name} is a {type(loaded.obj).__name__}; name an nn.Module class or a "
                          "function that returns one")  # fmt: skip
    trust(loaded)
    return loaded


def recorded_builder(name: str, file: str | None, sha256: str | None, *,
                     model_file: str | os.PathLike | None = None) -> Callable[..., Any]:  # fmt: skip
    """The class or function ``name`` of a run trained from a file (see the module docstring).

    Args:
        name: the object's name in the file.
        file, sha256: what the run recorded.
        model_file: a path the user names explicitly (the file moved, or the run came from elsewhere).
    """
    if model_file is not None:
        loaded = load_object(path=model_file, name=name)
        if sha256 and loaded.sha256 != sha256:
            warnings.warn(f"{loaded.path} differs from the file this run was trained with (SHA-256 "
                          f"{loaded.sha256[:12]}... vs {sha256[:12]}...); using it because you named it",
                          ModelFileChanged, stacklevel=2)  # fmt: skip
        return loaded.obj
    if not file or not sha256:
        raise ConfigError("this run's config.json names a model file without its path and hash; "
                          "give the file with model_file=PATH")  # fmt: skip
    if not is_trusted(file, sha256):
        raise ConfigError(f"this run's model comes from {file}, which you have not trained from on this machine "
                          "(the run folder may come from elsewhere); divekit never runs code a run folder points at "
                          "by itself: if you trust that file, name it with model_file=PATH")  # fmt: skip
    if not Path(file).is_file():
        raise ConfigError(f"this run's model file {file} is gone; if it moved, name it with model_file=PATH")
    now = file_sha256(file)
    if now != sha256:
        raise ConfigError(f"{file} has changed since this run was trained (SHA-256 {now[:12]}... instead of "
                          f"{sha256[:12]}...); nothing was imported: name the file it was trained with, model_file=PATH")  # fmt: skip
    return load_object(path=file, name=name, expected_sha256=sha256).obj
