"""A text as one stream of token ids for language modelling (notes §6.2-§6.3).

The whole text is tokenised into one stream (the book's ``load_corpus``);
``data.val_split`` holds out its last fraction for validation perplexity
(contiguous, so no subsequence straddles the two parts). Training batches
come from the book's random or sequential sampler.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from divekit.data.batching import EpochBatches, Replay
from divekit.choices import NORMALIZATIONS, SAMPLINGS, TOKENS
from divekit.data.corpora import TextCorpus, build_corpus
from divekit.data.sampling import RandomSequenceBatches, SequentialBatches, evaluation_batches
from divekit.data.sources.base import DataSource, check_fraction
from divekit.errors import ConfigError


@dataclass
class TextOptions:
    """Options of the language-modelling task (the run config's ``task.options``).

    Attributes:
        token: ``char`` or ``word`` tokens.
        num_steps: time steps per subsequence.
        sampling: ``sequential`` (the hidden state carries over between batches) or ``random``.
        max_tokens: train on the first N tokens only (``None``: all).
        min_freq: tokens rarer than this become ``<unk>``.
        normalize: ``letters`` (the book's cleaning) or ``none``.
    """

    token: str = "char"
    num_steps: int = 35
    sampling: str = "sequential"
    max_tokens: int | None = None
    min_freq: int = 0
    normalize: str = "letters"

    def __post_init__(self) -> None:
        for name, value, valid in (("token", self.token, TOKENS), ("sampling", self.sampling, SAMPLINGS),
                                   ("normalize", self.normalize, NORMALIZATIONS)):  # fmt: skip
            if value not in valid:
                raise ConfigError(f"task.options.{name}: unknown value {value!r}; use one of {', '.join(valid)}")
        if self.num_steps < 1:
            raise ConfigError(f"task.options.num_steps must be at least 1, got {self.num_steps}")
        if self.max_tokens is not None and self.max_tokens < 2:
            raise ConfigError(f"task.options.max_tokens must be at least 2, got {self.max_tokens}")


class TextSource(DataSource):
    """One text's token stream: training subsequences and, with ``val_split``, a held-out tail."""

    task = "language-model"

    def __init__(self, data: TextCorpus, options: TextOptions, *, batch_size: int, eval_batch_size: int,
                 val_split: float = 0.0, split_seed: int = 0, model_input_size: Any = None) -> None:  # fmt: skip
        check_fraction(val_split)
        self.data, self.options = data, options
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        ids, self.vocab = build_corpus(data.lines(options.normalize), token=options.token,
                                       min_freq=options.min_freq, max_tokens=options.max_tokens)  # fmt: skip
        held_out = int(len(ids) * val_split)
        self.train_ids = torch.tensor(ids[:len(ids) - held_out], dtype=torch.long)
        self.val_ids = torch.tensor(ids[len(ids) - held_out:], dtype=torch.long)
        self.train_batches(seed=0)  # refuse a corpus too short for one batch, before training

    def train_batches(self, *, seed: int) -> EpochBatches:
        cls = SequentialBatches if self.options.sampling == "sequential" else RandomSequenceBatches
        return cls(self.train_ids, batch_size=self.batch_size, num_steps=self.options.num_steps, seed=seed)

    def eval_batches(self) -> dict[str, Iterable[Any]]:
        if len(self.val_ids) < 2:
            return {}
        ids, size, steps = self.val_ids, self.eval_batch_size, self.options.num_steps
        return {"val": Replay(lambda: evaluation_batches(ids, batch_size=size, num_steps=steps))}

    def model_options(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab)}

    def info(self) -> dict[str, Any]:
        o = self.options
        return {**self.data.info(), "token": o.token, "normalize": o.normalize, "num_steps": o.num_steps,
                "vocab_size": len(self.vocab), "train_tokens": len(self.train_ids),
                "valid_tokens": len(self.val_ids), "model_options": self.model_options()}  # fmt: skip

    def extras(self) -> dict[str, str]:
        return {"vocab.json": self.vocab.to_json()}
