"""``pairs``: any tab-separated file of sentence pairs, ``source<TAB>target`` (any languages, UTF-8).

The file is read as ``fra-eng`` is (:func:`~divekit.data.translation.read_tab_pairs`:
an optional third column is ignored, text is lowercased and punctuation split
off, words are split on spaces), and trains with the same task options
(``num_steps``, ``num_examples``, ``num_test``, ``min_freq``; see
:class:`~divekit.data.sources.translation.TranslationOptions`).

Its test split is its own: a tenth of the distinct source sentences, chosen by
the SHA-256 of ``"0:" + sentence`` (always the same for the same file, and no
source sentence is in both training and test). Validation is carved from the
training pairs by ``data.val_split``, as for every data set.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from divekit.data.registry import register_dataset
from divekit.data.translation import TranslationData, read_tab_pairs
from divekit.errors import ConfigError, DataError

Pair = tuple[str, str]
TEST_FRACTION = 0.1
SPLIT_SEED = 0
MIN_SOURCES = 2  # one to train on and one to test on


def split_pairs(pairs: list[Pair], *, fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED,
                where: str = "the pairs") -> tuple[list[Pair], list[Pair]]:  # fmt: skip
    """``(train, test)``: ``fraction`` of the distinct source sentences (at least one) and all their pairs held out.

    Both keep the file's order. Raises DataError when there are too few
    distinct source sentences to hold one out and keep one.
    """
    sources = list(dict.fromkeys(source for source, _ in pairs))
    if len(sources) < MIN_SOURCES:
        raise DataError(f"{where}: {len(pairs)} pair(s) with {len(sources)} distinct source sentence(s); training and "
                        f"testing need at least {MIN_SOURCES} different source sentences (use hundreds)")  # fmt: skip
    ranked = sorted(sources, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    held = set(ranked[:min(len(sources) - 1, max(1, round(fraction * len(sources))))])
    return [p for p in pairs if p[0] not in held], [p for p in pairs if p[0] in held]


def looks_like_pairs(path: Path, *, lines: int = 50) -> bool:
    """Whether the first non-blank lines of ``path`` (UTF-8) all have 2 or 3 tab-separated, non-empty columns."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            sample = [line.rstrip("\r\n") for _, line in zip(range(lines * 2), handle) if line.strip()][:lines]
    except (OSError, UnicodeDecodeError):
        return False
    columns = [line.split("\t") for line in sample]
    return bool(sample) and all(len(c) in (2, 3) and c[0].strip() and c[1].strip() for c in columns)


def load_pairs_file(path: str | os.PathLike) -> TranslationData:
    """The pairs of ``path`` with their own test split (see the module docstring)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{path} is a folder; name the tab-separated file of sentence pairs itself")
    if not path.exists():
        raise DataError(f"{path}: no such file of sentence pairs")
    train, test = split_pairs(read_tab_pairs(path), where=str(path))
    return TranslationData(path.stem, train, held_out=test, source_lang="source", target_lang="target",
                           description=f"sentence pairs from {path}")  # fmt: skip


@register_dataset(
    "pairs",
    task="seq2seq",
    description="any UTF-8 file of source<TAB>target sentence pairs, named by data.data_dir (a tenth held out to test)",
)
def _pairs(*, data_dir: str | os.PathLike | None = None, **_: object) -> TranslationData:
    if data_dir is None:
        raise ConfigError("the pairs data set reads the file named by data.data_dir; set it to a tab-separated file "
                          "of source<TAB>target sentences")  # fmt: skip
    return load_pairs_file(data_dir)
