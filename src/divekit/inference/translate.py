"""Translate sentences with a trained run, and look at where its attention goes.

A :class:`Translator` rebuilds a translation run (model, vocabularies,
``num_steps``) from its folder. :meth:`Translator.translate` streams any
number of sentences through the model a batch at a time (memory stays
bounded, outputs come back in order); :meth:`Translator.attention_maps`
records the attention weights of one translation for plotting.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from divekit.data.text import Vocab
from divekit.data.translation import BOS, EOS, build_array, preprocess_nmt
from divekit.errors import ConfigError
from divekit.nn.attention import record_attention
from divekit.inference.bleu import book_bleu
from divekit.inference.decoding import beam_search, greedy_decode
from divekit.runs.load import load_run


@dataclass
class Translation:
    """One source sentence and its translation (words, without ``<eos>``).

    ``truncated`` says the source had more than ``num_steps - 1`` words and was
    cut, as in training.
    """

    source: str
    words: list[str]
    truncated: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def bleu(self, reference: str, k: int = 2) -> float:
        """The book's BLEU of this translation against ``reference`` (pre-processed like training text)."""
        return book_bleu(self.text, preprocess_nmt(reference), k=k)


@dataclass
class AttentionMaps:
    """Attention weights of one translation, cropped to the real tokens.

    ``encoder``: one ``(heads, S, S)`` array per encoder layer (self-attention).
    ``cross``: one ``(heads, T, S)`` array per decoder layer (to the source).
    """

    source_tokens: list[str]
    output_tokens: list[str]
    encoder: list[torch.Tensor] = field(default_factory=list)
    cross: list[torch.Tensor] = field(default_factory=list)


class Translator:
    """A trained encoder-decoder with its vocabularies.

    Args:
        model: the :class:`~divekit.nn.encoder_decoder.EncoderDecoder`.
        src_vocab, tgt_vocab: the run's vocabularies.
        num_steps: the length sources were padded to in training.
    """

    def __init__(self, model: nn.Module, src_vocab: Vocab, tgt_vocab: Vocab, *, num_steps: int) -> None:
        self.model = model.eval()
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.num_steps = num_steps
        self.device = next(model.parameters()).device

    @classmethod
    def from_run(cls, run_dir: str | Path, *, which: str = "best", device: str = "cpu",
                 model_file: str | None = None) -> Translator:  # fmt: skip
        """Load the run in ``run_dir`` (written by ``divekit train`` on translation data)."""
        run = load_run(run_dir, which=which, device=device, model_file=model_file)
        if run.task != "seq2seq":
            raise ConfigError(f"{run_dir} is a {run.task} run; translation needs a seq2seq run")
        src_vocab = run.vocab("src_vocab.json", size_option="src_vocab_size")
        tgt_vocab = run.vocab("tgt_vocab.json", size_option="tgt_vocab_size")
        return cls(run.model, src_vocab, tgt_vocab, num_steps=int(run.info["num_steps"]))

    def _encode(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
        lines = [preprocess_nmt(s).split() for s in sentences]
        src, valid = build_array(lines, self.src_vocab, self.num_steps)
        return src.to(self.device), valid.to(self.device), [len(line) >= self.num_steps for line in lines]

    def _words(self, ids: list[int]) -> list[str]:
        return self.tgt_vocab.to_tokens(ids)

    def translate_batch(self, sentences: list[str], *, beam_size: int = 1, max_len: int | None = None) -> list[Translation]:
        """Translate ``sentences`` together (greedy) or one by one (beam search)."""
        max_len = self._check(beam_size, max_len)
        src, valid, truncated = self._encode(sentences)
        bos, eos = self.tgt_vocab[BOS], self.tgt_vocab[EOS]
        if beam_size == 1:
            outputs = greedy_decode(self.model, src, valid, bos=bos, eos=eos, max_len=max_len)
        else:
            outputs = [beam_search(self.model, src[i : i + 1], valid[i : i + 1], bos=bos, eos=eos, max_len=max_len,
                                   beam_size=beam_size) for i in range(len(sentences))]  # fmt: skip
        return [Translation(s, self._words(ids), cut) for s, ids, cut in zip(sentences, outputs, truncated)]

    def translate(self, sentences: Iterable[str], *, beam_size: int = 1, batch_size: int = 64,
                  max_len: int | None = None) -> Iterator[Translation]:  # fmt: skip
        """Yield the translation of each sentence, in order, ``batch_size`` sentences at a time."""
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        iterator = iter(sentences)
        while batch := list(itertools.islice(iterator, batch_size)):
            yield from self.translate_batch(batch, beam_size=beam_size, max_len=max_len)

    def _check(self, beam_size: int, max_len: int | None) -> int:
        max_len = self.num_steps if max_len is None else max_len
        if beam_size < 1:
            raise ConfigError(f"beam_size must be at least 1, got {beam_size}")
        limit = getattr(self.model.decoder, "max_len", None)
        if max_len < 1 or (limit is not None and max_len > limit):
            raise ConfigError(f"max_len must be between 1 and {limit or 'any length'}, got {max_len}")
        return max_len

    def attention_maps(self, sentence: str, *, max_len: int | None = None) -> AttentionMaps:
        """Translate ``sentence`` greedily, recording encoder self-attention and decoder cross-attention."""
        max_len = self._check(1, max_len)
        src, valid, _ = self._encode([sentence])
        steps: list[list[torch.Tensor]] = []
        encoder_maps: list[torch.Tensor] = []

        def keep_step(step: int) -> None:
            if step == 0:  # the encoder ran just before the first step
                encoder_maps.extend(self.model.encoder.self_attention_weights())
            steps.append(self.model.decoder.cross_attention_weights())

        with record_attention(self.model):
            (ids,) = greedy_decode(self.model, src, valid, bos=self.tgt_vocab[BOS], eos=self.tgt_vocab[EOS],
                                   max_len=max_len, on_step=keep_step)  # fmt: skip
        S = int(valid[0])
        source_tokens = self.src_vocab.to_tokens(src[0, :S].tolist())
        output_tokens = self._words(ids) + ([EOS] if len(steps) > len(ids) else [])
        T = len(output_tokens)
        cross = [torch.cat([step[layer] for step in steps], dim=2)[0, :, :T, :S].cpu()  # (heads, T, S)
                 for layer in range(len(steps[0]))] if steps and steps[0] else []  # fmt: skip
        encoder = [w[0, :, :S, :S].cpu() for w in encoder_maps]  # (heads, S, S)
        return AttentionMaps(source_tokens, output_tokens, encoder, cross)
