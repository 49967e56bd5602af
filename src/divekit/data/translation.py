"""Machine-translation data (notes §6.10 seq2seq): sentence pairs, pre-processing, padding.

``fra-eng`` holds the English-French pairs of the Tatoeba project as the
Anki/manythings.org exports lay them out: one pair per line, ``English<TAB>
French``, optionally followed by a third column (attribution) that is ignored.
The book trains on its first 600 pairs.

Pre-processing follows the book: non-breaking spaces become spaces, text is
lowercased, and a space is put before ``, . ! ?`` so that punctuation
becomes its own word. Sentences are then split into words, mapped to
vocabularies with ``<pad>``, ``<bos>`` and ``<eos>``, ended with ``<eos>``
and truncated or padded to ``num_steps`` tokens (:func:`build_array`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from divekit.data.archive import safe_extract
from divekit.data.download import RemoteFile, dataset_folder, download
from divekit.data.registry import register_dataset
from divekit.data.text import Vocab
from divekit.errors import ConfigError, DataError
from divekit.io import read_lines

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, BOS, EOS)

FRA_ENG_ARCHIVE = RemoteFile(
    "fra-eng.zip",
    sha256="",  # the book's data hub publishes only the SHA-1 of this archive
    urls=("https://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip",),
    sha1="94646ad1522d915e7b0f9296181140edcf86a4f5",
)


def preprocess_nmt(text: str) -> str:
    """The book's normalisation: no non-breaking spaces, lowercase, a space before ``, . ! ?``."""
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    spaced = [" " + ch if i > 0 and ch in ",.!?" and text[i - 1] != " " else ch for i, ch in enumerate(text)]
    return "".join(spaced)


def detokenize_nmt(text: str) -> str:
    """Undo :func:`preprocess_nmt`'s spacing (``va !`` -> ``va!``), as sacrebleu expects text as written."""
    return re.sub(r" ([,.!?])", r"\1", text)


def truncate_pad(line: Sequence[int], num_steps: int, padding_token: int) -> list[int]:
    """Cut ``line`` to ``num_steps`` tokens, or pad it to that length with ``padding_token``."""
    if len(line) > num_steps:
        return list(line[:num_steps])
    return list(line) + [padding_token] * (num_steps - len(line))


def build_array(lines: Sequence[Sequence[str]], vocab: Vocab, num_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> ids ``(N, num_steps)``, each ended by ``<eos>`` and padded, and their valid lengths ``(N,)``.

    The valid length counts ``<eos>``; a sentence cut at ``num_steps`` loses it.
    """
    eos, pad = vocab[EOS], vocab[PAD]
    rows = [truncate_pad([*vocab[list(line)], eos], num_steps, pad) for line in lines]
    array = torch.tensor(rows, dtype=torch.long).reshape(len(rows), num_steps)  # (N, num_steps), even for N = 0
    valid_len = torch.tensor([min(len(line) + 1, num_steps) for line in lines], dtype=torch.long)
    return array, valid_len


def build_vocab(lines: Sequence[Sequence[str]], *, min_freq: int = 2) -> Vocab:
    """A vocabulary with ``<pad>``, ``<bos>``, ``<eos>`` and every word seen ``min_freq`` times (the book: 2)."""
    return Vocab(lines, min_freq=min_freq, reserved_tokens=SPECIAL_TOKENS)


def read_tab_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Pre-processed ``(source, target)`` pairs from a tab-separated file of 2 or 3 columns.

    Blank lines are skipped; any other line without exactly 2 or 3 columns is
    an error naming the line. Only a regular file is read, line by line; a
    line over :data:`divekit.io.MAX_LINE_CHARS` characters is refused.
    """
    path = Path(path)
    pairs = []
    for number, line in enumerate(read_lines(path, what="sentence-pairs file"), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) not in (2, 3) or not columns[0].strip() or not columns[1].strip():
            raise DataError(
                f"{path}, line {number}: expected 'source<TAB>target' with an optional third column "
                f"(attribution), found {len(columns)} column(s): {line[:60]!r}"
            )
        pairs.append((preprocess_nmt(columns[0].strip()), preprocess_nmt(columns[1].strip())))
    if not pairs:
        raise DataError(f"{path}: no sentence pairs found")
    return pairs


@dataclass
class TranslationData:
    """Pre-processed sentence pairs of one language pair.

    Attributes:
        name: the data set's name.
        pairs: ``(source, target)`` training candidates, in order (file order,
            or the data set's own shuffled order).
        held_out: a fixed test split, for data sets that define one; otherwise
            :meth:`split` takes the test pairs from after the training pairs.
        source_lang, target_lang: language codes.
    """

    name: str
    pairs: list[tuple[str, str]]
    held_out: list[tuple[str, str]] | None = None
    source_lang: str = "en"
    target_lang: str = "fr"
    description: str = ""
    task: str = field(default="seq2seq", init=False)

    def split(self, *, num_examples: int | None = None, num_test: int | None = None) -> tuple[list, list]:
        """Training and test pairs; no test pair has a source sentence seen in training.

        Args:
            num_examples: the first ``num_examples`` pairs train (the book: 600);
                default all but a held-out tenth.
            num_test: test pairs; default a tenth of the training pairs (or the
                whole fixed split). Without a fixed split they are the next pairs
                after the training ones in file order (of similar length, since
                the Tatoeba export is sorted by length), skipping any whose
                source sentence is in training.
        """
        if num_examples is not None and num_examples < 1:
            raise ConfigError(f"num_examples must be at least 1, got {num_examples}")
        if num_test is not None and num_test < 1:
            raise ConfigError(f"num_test must be at least 1, got {num_test}")
        if self.held_out is not None:
            return self._fixed_split(num_examples, num_test)
        return self._contiguous_split(num_examples, num_test)

    def _fixed_split(self, num_examples: int | None, num_test: int | None) -> tuple[list, list]:
        if num_examples is not None and num_examples > len(self.pairs):
            raise ConfigError(f"{self.name} has {len(self.pairs):,} training pairs; "
                              f"num_examples={num_examples:,} is too many")  # fmt: skip
        return self.pairs[:num_examples], self.held_out[:num_test]

    def _contiguous_split(self, num_examples: int | None, num_test: int | None) -> tuple[list, list]:
        total = len(self.pairs)
        num_train = total - max(1, total // 11) if num_examples is None else num_examples
        if num_train >= total:
            raise ConfigError(f"{self.name} has {total:,} pairs; num_examples={num_train:,} leaves none to test on: "
                              f"use at most {total - 1:,}")  # fmt: skip
        train = self.pairs[:num_train]
        budget = num_test if num_test is not None else max(1, num_train // 10)
        seen = {source for source, _ in train}
        test = []
        for pair in self.pairs[num_train:]:
            if len(test) == budget:
                break
            if pair[0] not in seen:
                test.append(pair)
        if not test:
            raise ConfigError(f"{self.name}: every pair after the first {num_train:,} repeats a training sentence; "
                              "use fewer examples")  # fmt: skip
        return train, test

    def info(self) -> dict[str, Any]:
        return {"task": self.task, "data": self.name, "source_lang": self.source_lang, "target_lang": self.target_lang}


def _find_pairs_file(folder: Path) -> Path | None:
    for candidate in (folder / "fra.txt", folder / "fra-eng" / "fra.txt"):
        if candidate.is_file():
            return candidate
    return None


def fra_eng_file(data_dir: str | os.PathLike | None = None, *, download_missing: bool = False,
                 mirror: str | None = None) -> Path:  # fmt: skip
    """The ``fra.txt`` to read: a file named by ``data_dir``, one in its folder, or one unpacked from the archive.

    The archive (``fra-eng.zip``, the book's) is unpacked when present, and
    downloaded first only if ``download_missing`` is set.
    """
    if data_dir is not None and Path(data_dir).expanduser().is_file():
        return Path(data_dir).expanduser()
    folder = dataset_folder("fra-eng", data_dir, ["fra.txt", FRA_ENG_ARCHIVE.name])
    found = _find_pairs_file(folder)
    if found is not None:
        return found
    archive = folder / FRA_ENG_ARCHIVE.name
    if not archive.is_file():
        if not download_missing:
            raise DataError(
                f"fra-eng: no fra.txt (or {FRA_ENG_ARCHIVE.name}) in {folder}. Point data.data_dir at the tab-separated "
                f"file or its folder, or set data.download=true to fetch the book's archive"
            )
        download(FRA_ENG_ARCHIVE, folder, mirror=mirror)
    safe_extract(archive, folder)
    found = _find_pairs_file(folder)
    if found is None:
        raise DataError(f"{archive} holds no fra.txt (nor fra-eng/fra.txt); delete it and download it again")
    return found


@register_dataset(
    "fra-eng",
    task="seq2seq",
    description="Tatoeba English-French sentence pairs (tab-separated; the book trains on the first 600)",
    recipe={"task.options.num_examples": 600},
)
def load_fra_eng(*, data_dir: str | os.PathLike | None = None, download: bool = False,
                 mirror: str | None = None) -> TranslationData:  # fmt: skip
    path = fra_eng_file(data_dir, download_missing=download, mirror=mirror)
    return TranslationData("fra-eng", read_tab_pairs(path), description=f"English-French pairs from {path}")
