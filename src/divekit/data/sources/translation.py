"""Sentence pairs for sequence to sequence (notes §6.10): vocabularies, padded arrays, held-out splits.

Training pairs become padded id arrays ``(src, src_valid, tgt, tgt_valid)``.
The held-out splits (``val`` carved from the training pairs by source
sentence, ``test`` the data set's own) are grouped by source sentence: each
evaluation row is one source with *all* its reference translations
(``tgt`` of shape ``(N, R, T)``, padding references of valid length 0), so
the loss still covers every held-out pair once and corpus BLEU scores each
source against every reference it has, given as the original text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from divekit.data.batching import EpochBatches, Replay, Rows
from divekit.data.loader import TensorBatches
from divekit.data.sources.base import DataSource, carve_validation
from divekit.data.text import Vocab, tokenize
from divekit.data.translation import TranslationData, build_array, build_vocab, detokenize_nmt
from divekit.errors import ConfigError

Pair = tuple[str, str]


@dataclass
class TranslationOptions:
    """Options of the translation task (the run config's ``task.options``).

    Attributes:
        num_steps: sentences are cut or padded to this many tokens (``<eos>`` included).
        num_examples: training pairs (the book uses 600); default all but a held-out tenth.
        num_test: held-out test pairs (default a tenth of the training pairs, or the data set's own test split).
        min_freq: words seen fewer times in training become ``<unk>``.
        bleu: translate the held-out sources at every evaluation and report corpus BLEU
            (the best checkpoint is then the one with the highest validation BLEU).
    """

    num_steps: int = 10
    num_examples: int | None = None
    num_test: int | None = None
    min_freq: int = 2
    bleu: bool = True

    def __post_init__(self) -> None:
        if self.num_steps < 2:
            raise ConfigError(f"task.options.num_steps must be at least 2 (a word and <eos>), got {self.num_steps}")
        if self.min_freq < 0:
            raise ConfigError(f"task.options.min_freq must be >= 0, got {self.min_freq}")


def group_by_source(pairs: Sequence[Pair]) -> dict[str, list[str]]:
    """Each source sentence with every target it has, in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for source, target in pairs:
        grouped.setdefault(source, []).append(target)
    return grouped


def carve_by_source(pairs: Sequence[Pair], fraction: float, *, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Split ``pairs`` into training and validation pairs whose source sentences do not overlap."""
    grouped = group_by_source(pairs)
    sources = list(grouped)
    train_index, val_index = carve_validation(len(sources), fraction, seed=seed, what="source sentences")
    take = lambda index: [(sources[i], t) for i in index.tolist() for t in grouped[sources[i]]]  # noqa: E731
    return take(train_index), take(val_index)


class TranslationSource(DataSource):
    """Translation pairs as padded arrays, with vocabularies built on the training pairs only."""

    task = "seq2seq"

    def __init__(self, data: TranslationData, options: TranslationOptions, *, batch_size: int,
                 eval_batch_size: int, val_split: float = 0.0, split_seed: int = 0,
                 model_input_size: Any = None) -> None:  # fmt: skip
        self.data, self.options = data, options
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        train, test = data.split(num_examples=options.num_examples, num_test=options.num_test)
        train, val = carve_by_source(train, val_split, seed=split_seed)
        src_lines, tgt_lines = tokenize([s for s, _ in train]), tokenize([t for _, t in train])
        self.src_vocab = build_vocab(src_lines, min_freq=options.min_freq)
        self.tgt_vocab = build_vocab(tgt_lines, min_freq=options.min_freq)
        src, src_valid = build_array(src_lines, self.src_vocab, options.num_steps)
        tgt, tgt_valid = build_array(tgt_lines, self.tgt_vocab, options.num_steps)
        self.train_arrays = (src, src_valid, tgt, tgt_valid)
        self.held_out = {"val": group_by_source(val), "test": group_by_source(test)}
        self.sizes = {"train": len(train), "val": len(val), "test": len(test)}

    def train_batches(self, *, seed: int) -> EpochBatches:
        return TensorBatches(self.train_arrays, batch_size=self.batch_size, shuffle=True, seed=seed)

    def eval_batches(self) -> dict[str, Iterable[Any]]:
        return {name: Replay(lambda g=grouped: self._grouped_batches(g))
                for name, grouped in self.held_out.items() if grouped}  # fmt: skip

    def grouped_arrays(self, grouped: dict[str, list[str]]) -> tuple[torch.Tensor, ...]:
        """``(src (N, T), src_valid (N,), tgt (N, R, T), tgt_valid (N, R))`` for sources with their references."""
        steps, width = self.options.num_steps, max(len(t) for t in grouped.values())
        src, src_valid = build_array(tokenize(list(grouped)), self.src_vocab, steps)
        tgt = torch.full((len(grouped), width, steps), self.tgt_vocab["<pad>"], dtype=torch.long)
        tgt_valid = torch.zeros(len(grouped), width, dtype=torch.long)
        for i, targets in enumerate(grouped.values()):
            ids, valid = build_array(tokenize(targets), self.tgt_vocab, steps)
            tgt[i, :len(targets)], tgt_valid[i, :len(targets)] = ids, valid
        return src, src_valid, tgt, tgt_valid

    def _grouped_batches(self, grouped: dict[str, list[str]]) -> Iterator[tuple]:
        arrays = self.grouped_arrays(grouped)
        references = [[detokenize_nmt(t) for t in targets] for targets in grouped.values()]
        for start in range(0, len(references), self.eval_batch_size):
            rows = slice(start, start + self.eval_batch_size)
            yield (*(a[rows] for a in arrays), Rows(references[rows]))

    def model_options(self) -> dict[str, Any]:
        return {"src_vocab_size": len(self.src_vocab), "tgt_vocab_size": len(self.tgt_vocab)}

    def info(self) -> dict[str, Any]:
        return {**self.data.info(), "num_steps": self.options.num_steps, "num_train": self.sizes["train"],
                "num_val": self.sizes["val"], "num_test": self.sizes["test"], "model_options": self.model_options()}  # fmt: skip

    def extras(self) -> dict[str, str]:
        return {"src_vocab.json": self.src_vocab.to_json(), "tgt_vocab.json": self.tgt_vocab.to_json()}


def vocab_words(vocab: Vocab | None, ids: Sequence[int]) -> list[str]:
    """The words of ``ids`` (their numbers as strings when there is no vocabulary)."""
    return [str(i) for i in ids] if vocab is None else vocab.to_tokens(list(ids))
