"""What the command modules share: ``KEY=VALUE`` parsing, ``--model-file``, and config keys shown as flags.

The library and the engine name options by their config keys
(``optim.clip_grad``) and Python arguments (``resume=True``); the command
line shows its users the flags that set them instead (:func:`as_flags`).
"""

from __future__ import annotations

import argparse
import functools
import re

from divekit.errors import ConfigError

# Python arguments and keys that have a flag outside the train command's table.
EXTRA_FLAGS = {
    "resume=True": "--resume",
    "out_dir": "--out",
    "model_file=PATH": "--model-file PATH",
    "model_file": "--model-file",
    "model.options": "--option KEY=VALUE",
    "task.options.KEY": "--set task.options.KEY=VALUE",
    "beam_size": "--beam-size",
    "max_len": "--max-len",
    "start_lr": "--start-lr",
    "end_lr": "--end-lr",
}


def split_assignment(item: str, flag: str) -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")``; anything else is one error naming ``flag``."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"{flag} expects KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def add_model_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-file", metavar="FILE.py",
                        help="for a run trained from a model file that moved or came from elsewhere: the file to "
                             "import the model from (only files you name are ever imported)")  # fmt: skip


@functools.cache
def flag_table() -> dict[str, str]:
    """Config key (or ``key=true`` for a switch) -> the flag that sets it, longest keys first."""
    from divekit.cli.train import SWITCHES, TRAIN_FLAGS

    table = {flag.key: flag.name for flag in TRAIN_FLAGS}
    table |= {f"{key}=true": name for name, key, _ in SWITCHES} | {f"{key}=True": name for name, key, _ in SWITCHES}
    table |= {key: f"{name}/--no-{name[2:]}" for name, key, _ in SWITCHES if key not in table}
    table |= EXTRA_FLAGS
    return dict(sorted(table.items(), key=lambda kv: -len(kv[0])))


def as_flags(message: str) -> str:
    """``message`` with every config key or Python argument that has a flag replaced by that flag."""
    table = flag_table()
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(k)}(?![\w.])" for k in table))
    return pattern.sub(lambda m: table[m.group(0)], message)
