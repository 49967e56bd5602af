"""Text corpora for language modelling (notes §6.2 文本预处理, §6.3 语言模型).

- ``timemachine``: H. G. Wells' *The Time Machine*, the book's corpus: read
  from a folder the user names, or fetched by opt-in download and checked
  against its SHA-256.
- ``pydoc``: the offline default, English prose that ships with every
  Python: the standard library's ``pydoc_data`` help topics.
- ``text-file``: any UTF-8 text file the user names with ``--data-dir FILE``.

A corpus keeps its raw lines; :func:`normalize_lines` cleans them as the
book's reader does (``letters``: every run of non-letters becomes one space,
then strip and lowercase) or leaves them as they are (``none``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divekit.data.download import RemoteFile, dataset_folder, download
from divekit.data.registry import register_dataset
from divekit.data.text import Vocab, tokenize
from divekit.errors import ConfigError, DataError

NORMALIZATIONS = ("letters", "none")
_NON_LETTERS = re.compile("[^A-Za-z]+")

TIME_MACHINE = RemoteFile(
    name="timemachine.txt",
    sha256="8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516",
    urls=("https://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt",),
    size=178_979,
)


def normalize_line(line: str, mode: str = "letters") -> str:
    """Clean one line: ``letters`` keeps only lowercase letters and single spaces; ``none`` keeps it."""
    if mode == "letters":
        return _NON_LETTERS.sub(" ", line).strip().lower()
    if mode == "none":
        return line.rstrip("\r\n")
    raise ConfigError(f"unknown normalization {mode!r}; use one of {', '.join(NORMALIZATIONS)}")


def normalize_lines(lines: Iterable[str], mode: str = "letters") -> list[str]:
    """:func:`normalize_line` on every line (empty lines stay, as in the book's reader)."""
    return [normalize_line(line, mode) for line in lines]


@dataclass
class TextCorpus:
    """The raw lines of a text, for the ``text`` task (language modelling).

    Attributes:
        name: the data set's name (or the file's name).
        raw_lines: the text's lines, without line endings.
        source: where it came from (a path, or ``embedded``).
    """

    name: str
    raw_lines: list[str]
    source: str
    kind: str = "text"

    def lines(self, normalize: str = "letters") -> list[str]:
        """The lines cleaned with ``normalize`` (see :func:`normalize_line`)."""
        return normalize_lines(self.raw_lines, normalize)

    def info(self) -> dict[str, Any]:
        return {"kind": self.kind, "data": self.name, "source": self.source}


def read_text_file(path: str | os.PathLike, *, name: str | None = None) -> TextCorpus:
    """Read a UTF-8 text file (a leading byte-order mark is dropped) into a :class:`TextCorpus`."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{path} is a folder; name a UTF-8 text file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such text file") from err
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (bad byte at offset {err.start}); convert it with "
                        f"`iconv -t UTF-8` first") from err  # fmt: skip
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror or err})") from err
    if not text.strip():
        raise DataError(f"{path} holds no text")
    return TextCorpus(name or path.stem, text.splitlines(), str(path))


def load_time_machine(*, data_dir: str | os.PathLike | None = None, download_missing: bool = False,
                      mirror: str | None = None) -> TextCorpus:  # fmt: skip
    """*The Time Machine* from ``data_dir`` (a folder or the file itself), or downloaded on request."""
    if data_dir is not None and Path(data_dir).expanduser().is_file():
        return read_text_file(data_dir, name="timemachine")
    folder = dataset_folder("timemachine", data_dir, [TIME_MACHINE.name])
    path = folder / TIME_MACHINE.name
    if not path.is_file():
        if not download_missing:
            raise DataError(f"{path} is missing: pass --data-dir FOLDER holding {TIME_MACHINE.name}, "
                            f"or --download to fetch it")  # fmt: skip
        path = download(TIME_MACHINE, folder, mirror=mirror)
    return read_text_file(path, name="timemachine")


def pydoc_lines() -> list[str]:
    """The help topics of Python's ``pydoc_data`` package, in sorted topic order, as lines."""
    try:
        from pydoc_data.topics import topics
    except ImportError as err:  # some trimmed Python builds leave it out
        raise DataError("this Python has no pydoc_data package; use --data timemachine or text-file") from err
    return [line for key in sorted(topics) for line in topics[key].splitlines()]


def build_corpus(lines: Iterable[str], *, token: str = "char", min_freq: int = 0,
                 max_tokens: int | None = None) -> tuple[list[int], Vocab]:  # fmt: skip
    """Token ids of the whole text read as one stream, and its vocabulary (the book's ``load_corpus``).

    The vocabulary counts every token of the text; ``max_tokens`` then keeps
    only the first ids (the book trains on the first 10,000).

    Args:
        lines: the (normalised) lines of the text.
        token: ``"char"`` or ``"word"``.
        min_freq: rarer tokens become ``<unk>``.
        max_tokens: keep only this many leading tokens (``None``: all).
    """
    tokens = tokenize(lines, token)
    vocab = Vocab(tokens, min_freq=min_freq)
    lookup = vocab.token_to_idx
    ids = [lookup.get(t, vocab.unk) for line in tokens for t in line]
    return (ids if max_tokens is None else ids[:max_tokens]), vocab


@register_dataset(
    "timemachine",
    kind="text",
    description="H. G. Wells' The Time Machine, 3,221 lines (the book's corpus; a file, or --download)",
    recipe={"task.max_tokens": 10_000},  # the book trains its character models on the first 10,000 tokens
)
def _timemachine(*, data_dir=None, download=False, mirror=None) -> TextCorpus:
    return load_time_machine(data_dir=data_dir, download_missing=download, mirror=mirror)


@register_dataset(
    "pydoc",
    kind="text",
    description="Python's own help topics (pydoc_data), ~370,000 letters of English prose (embedded, offline default)",
    embedded=True,
    # ~37 Time Machines long: fewer, longer epochs than the book's 500 over 10,000 tokens
    recipe={"task.max_tokens": 100_000, "train.epochs": 40},
)
def _pydoc(**_: object) -> TextCorpus:
    return TextCorpus("pydoc", pydoc_lines(), "embedded: pydoc_data.topics")


@register_dataset("text-file", kind="text", description="any UTF-8 text file, named with --data-dir FILE")
def _text_file(*, data_dir=None, **_: object) -> TextCorpus:
    if data_dir is None:
        raise ConfigError("the text-file data set reads the file named by --data-dir FILE")
    return read_text_file(data_dir)

