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

A text file is never held whole: it is read again, in pieces of about
:data:`PIECE_BYTES`, each time its lines are used, so memory is bounded by
what is kept (the vocabulary and the first ``max_tokens`` ids), not by the
file, even when the file is one huge line.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divekit.choices import NORMALIZATIONS
from divekit.data.download import RemoteFile, dataset_folder, download
from divekit.data.registry import register_dataset
from divekit.data.text import Vocab, tokenize
from divekit.errors import ConfigError, DataError
from divekit.io import read_line_pieces

_NON_LETTERS = re.compile("[^A-Za-z]+")
_UNFINISHED = {"letters": re.compile("[A-Za-z]+$"), "none": re.compile(r"\S+$")}  # a word a piece may cut
PIECE_BYTES = 1 << 20  # a line longer than this is handled in pieces, cut between words
LONGEST_WORD = 1 << 20  # characters: a "word" longer than this is cut too (a text's real words are far shorter)

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


def normalize_pieces(pieces: Iterable[tuple[str, bool]], mode: str = "letters") -> Iterator[str]:
    """:func:`normalize_line` over lines that arrive in ``(text, ends_line)`` pieces, in bounded memory.

    ``pieces`` come as :func:`divekit.io.read_line_pieces` gives them (the
    last one ends its line). Yields one string per whole line, exactly ``normalize_line(line)``. A
    line cut into pieces yields several strings, cut between words, whose
    characters and words, read in order, are those of the whole cleaned line
    (only a "word" longer than :data:`LONGEST_WORD` is itself cut, which
    keeps its characters but splits it into words).
    """
    normalize_line("", mode)  # refuse an unknown mode before reading anything
    carry, started, glued = "", False, False
    for text, ends_line in pieces:
        text, carry = carry + text, ""
        cut_word = False
        if not ends_line:  # keep the word this piece may cut for the next one
            unfinished = _UNFINISHED[mode].search(text)
            if unfinished and len(unfinished.group()) <= LONGEST_WORD:
                carry, text = unfinished.group(), text[: unfinished.start()]
            cut_word = unfinished is not None and not carry
        out = normalize_line(text, mode)
        if mode == "letters" and started and out and not (glued and text[:1].isascii() and text[:1].isalpha()):
            out = " " + out  # the space the whole line had between the previous piece's last word and this one
        started, glued = (started or bool(out)) and not ends_line, cut_word
        yield out


class TextFile:
    """The lines of a UTF-8 text file, read afresh (and lazily) each time they are iterated.

    A line longer than :data:`PIECE_BYTES` comes as several strings.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def pieces(self) -> Iterator[tuple[str, bool]]:
        return read_line_pieces(self.path, piece_bytes=PIECE_BYTES, what="text file")

    def __iter__(self) -> Iterator[str]:
        return (text for text, _ in self.pieces())


class CleanedText:
    """A text file's lines cleaned with ``normalize``, re-read lazily on every iteration (see :func:`normalize_pieces`)."""

    def __init__(self, source: TextFile, normalize: str) -> None:
        normalize_line("", normalize)
        self.source, self.normalize = source, normalize

    def __iter__(self) -> Iterator[str]:
        return normalize_pieces(self.source.pieces(), self.normalize)


@dataclass
class TextCorpus:
    """The raw lines of a text, for the ``text`` task (language modelling).

    Attributes:
        name: the data set's name (or the file's name).
        raw_lines: the text's lines, without line endings: a list, or a
            :class:`TextFile` read lazily.
        source: where it came from (a path, or ``embedded``).
    """

    name: str
    raw_lines: Sequence[str] | TextFile
    source: str
    task: str = "language-model"

    def lines(self, normalize: str = "letters") -> list[str] | CleanedText:
        """The lines cleaned with ``normalize`` (see :func:`normalize_line`).

        A list for a text in memory; for a file, a :class:`CleanedText` that
        reads the file again each time it is iterated, in bounded memory.
        """
        if isinstance(self.raw_lines, TextFile):
            return CleanedText(self.raw_lines, normalize)
        return normalize_lines(self.raw_lines, normalize)

    def info(self) -> dict[str, Any]:
        return {"task": self.task, "data": self.name, "source": self.source}


def read_text_file(path: str | os.PathLike, *, name: str | None = None) -> TextCorpus:
    """A UTF-8 text file (a leading byte-order mark is dropped) as a :class:`TextCorpus`, read lazily.

    The file is checked once, in bounded memory, when it is named: a regular
    file (never a device or a pipe), UTF-8 throughout, and holding some text.
    """
    path = Path(path).expanduser()
    text = TextFile(path)
    has_text = False
    for piece in text:  # read to the end, so that every byte is checked
        has_text = has_text or not piece.isspace() and piece != ""
    if not has_text:
        raise DataError(f"{path} holds no text")
    return TextCorpus(name or path.stem, text, str(path))


def load_time_machine(*, data_dir: str | os.PathLike | None = None, download_missing: bool = False,
                      mirror: str | None = None) -> TextCorpus:  # fmt: skip
    """*The Time Machine* from ``data_dir`` (a folder or the file itself), or downloaded on request."""
    if data_dir is not None and Path(data_dir).expanduser().is_file():
        return read_text_file(data_dir, name="timemachine")
    folder = dataset_folder("timemachine", data_dir, [TIME_MACHINE.name])
    path = folder / TIME_MACHINE.name
    if not path.is_file():
        if not download_missing:
            raise DataError(f"{path} is missing: set data.data_dir to the folder holding {TIME_MACHINE.name}, "
                            f"or data.download=true to fetch it")  # fmt: skip
        path = download(TIME_MACHINE, folder, mirror=mirror)
    return read_text_file(path, name="timemachine")


def pydoc_lines() -> list[str]:
    """The help topics of Python's ``pydoc_data`` package, in sorted topic order, as lines."""
    try:
        from pydoc_data.topics import topics
    except ImportError as err:  # some trimmed Python builds leave it out
        raise DataError("this Python has no pydoc_data package; use the data set timemachine or text-file (data.name)") from err
    return [line for key in sorted(topics) for line in topics[key].splitlines()]


def build_corpus(lines: Iterable[str], *, token: str = "char", min_freq: int = 0,
                 max_tokens: int | None = None) -> tuple[list[int], Vocab]:  # fmt: skip
    """Token ids of the whole text read as one stream, and its vocabulary (the book's ``load_corpus``).

    The vocabulary counts every token of the text; ``max_tokens`` then keeps
    only the first ids (the book trains on the first 10,000). The text is
    read twice, as a stream (counting, then the ids), so memory holds the
    vocabulary and the kept ids only.

    Args:
        lines: the (normalised) lines of the text, e.g. :meth:`TextCorpus.lines`.
        token: ``"char"`` or ``"word"``.
        min_freq: rarer tokens become ``<unk>``.
        max_tokens: keep only this many leading tokens (``None``: all).

    Raises:
        DataError: the text has no tokens once cleaned.
    """
    if iter(lines) is lines:  # a one-shot iterator cannot be read twice
        lines = list(lines)
    counts: collections.Counter = collections.Counter()
    for line_tokens in _tokens(lines, token):
        counts.update(line_tokens)
    if not counts:
        raise DataError(f"no tokens after cleaning: the text holds no {token} tokens once cleaned (task.normalize "
                        "'letters' keeps only the letters a-z); use a text with letters, or task.normalize 'none'")
    vocab = Vocab(counts, min_freq=min_freq)
    lookup, unk = vocab.token_to_idx, vocab.unk
    ids = (lookup.get(t, unk) for line_tokens in _tokens(lines, token) for t in line_tokens)
    return list(itertools.islice(ids, max_tokens)), vocab


def _tokens(lines: Iterable[str], token: str) -> Iterator[list[str]]:
    for line in lines:
        yield tokenize((line,), token)[0]


@register_dataset(
    "timemachine",
    task="language-model",
    description="H. G. Wells' The Time Machine, 3,221 lines (the book's corpus; a file, or a download)",
    recipe={"task.options.max_tokens": 10_000},  # the book trains its character models on the first 10,000 tokens
)
def _timemachine(*, data_dir=None, download=False, mirror=None) -> TextCorpus:
    return load_time_machine(data_dir=data_dir, download_missing=download, mirror=mirror)


@register_dataset(
    "pydoc",
    task="language-model",
    description="Python's own help topics (pydoc_data), ~370,000 letters of English prose (embedded, offline default)",
    embedded=True,
    # ~37 Time Machines long: fewer, longer epochs than the book's 500 over 10,000 tokens
    recipe={"task.options.max_tokens": 100_000, "train.epochs": 40},
)
def _pydoc(**_: object) -> TextCorpus:
    return TextCorpus("pydoc", pydoc_lines(), "embedded: pydoc_data.topics")


@register_dataset("text-file", task="language-model", description="any UTF-8 text file, named by data.data_dir")
def _text_file(*, data_dir=None, **_: object) -> TextCorpus:
    if data_dir is None:
        raise ConfigError("the text-file data set reads the file named by data.data_dir; set it to a UTF-8 text file")
    return read_text_file(data_dir)

