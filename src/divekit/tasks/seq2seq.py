"""Sequence to sequence (notes §6.10): translation data -> teacher-forced loss, BLEU.

Training feeds the decoder the target shifted right behind ``<bos>``
(teacher forcing) and scores each position with softmax cross-entropy,
ignoring padding. The loss is the mean over the batch's *valid* target
tokens; the book's loss averages each sequence over all ``num_steps``
positions, padding included, so short sentences weigh less than they should.
Throughput counts target tokens.

Evaluation reports the same loss on the held-out pairs and, by default,
corpus BLEU (sacrebleu) of greedy translations of the held-out sources
against all their references.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.loader import TensorBatches
from divekit.data.text import tokenize
from divekit.data.translation import BOS, EOS, TranslationData, build_array, build_vocab, detokenize_nmt
from divekit.errors import ConfigError
from divekit.models.registry import ModelEntry
from divekit.nn.attention import sequence_mask
from divekit.inference.bleu import bleu_from_stats, bleu_stats
from divekit.engine.checkpoint import unwrap
from divekit.inference.decoding import greedy_decode
from divekit.tasks.base import StepOutput, Task, register_task


@dataclass
class TranslationTaskConfig:
    """Options of the translation task (the run config's ``task`` section).

    Attributes:
        num_steps: sentences are cut or padded to this many tokens (``<eos>`` included).
        num_examples: training pairs (``--num-examples``; the book uses 600); default all but a held-out tenth.
        num_test: held-out pairs (default a tenth of the training pairs, or the data set's own test split).
        min_freq: words seen fewer times in training become ``<unk>``.
        bleu: translate the held-out sources at every evaluation and report corpus BLEU
            (the best checkpoint is then the one with the highest BLEU).
    """

    num_steps: int = 10
    num_examples: int | None = None
    num_test: int | None = None
    min_freq: int = 2
    bleu: bool = True


def masked_softmax_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, valid_lens: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Softmax cross-entropy of ``logits (N, T, V)`` against ``labels (N, T)`` that ignores padding.

    Args:
        valid_lens: ``(N,)``: positions ``>= valid_lens[i]`` of example ``i`` are padding.
        reduction: ``"mean"`` over the valid tokens, ``"sum"`` over them, or
            ``"none"`` for the ``(N, T)`` token losses with zeros at padding.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"unknown reduction {reduction!r}; use 'mean', 'sum' or 'none'")
    token_losses = F.cross_entropy(logits.float().transpose(1, 2), labels, reduction="none")  # (N, T)
    token_losses = sequence_mask(token_losses, valid_lens)
    if reduction == "none":
        return token_losses
    total = token_losses.sum()
    return total if reduction == "sum" else total / valid_lens.sum().clamp(min=1)


def teacher_forcing_inputs(Y: torch.Tensor, bos: int) -> torch.Tensor:
    """The decoder's inputs: ``<bos>`` followed by the target without its last position."""
    start = torch.full((Y.shape[0], 1), bos, dtype=Y.dtype, device=Y.device)
    return torch.cat([start, Y[:, :-1]], dim=1)


class TranslationTask(Task):
    """Train an encoder-decoder on sentence pairs; report token loss and corpus BLEU."""

    kind = "translation"
    families = ("seq2seq",)
    unit = "tokens"

    def __init__(self, data: TranslationData, config: TranslationTaskConfig, *, batch_size: int,
                 eval_batch_size: int, model_entry: ModelEntry) -> None:  # fmt: skip
        if config.num_steps < 2:
            raise ConfigError(f"num_steps must be at least 2 (a word and <eos>), got {config.num_steps}")
        if config.min_freq < 0:
            raise ConfigError(f"min_freq must be >= 0, got {config.min_freq}")
        self.data, self.config = data, config
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.monitor, self.monitor_mode = ("test_bleu", "max") if config.bleu else ("test_loss", "min")
        train, test = data.split(num_examples=config.num_examples, num_test=config.num_test)
        self.num_train, self.num_test = len(train), len(test)
        src_lines, tgt_lines = tokenize([s for s, _ in train]), tokenize([t for _, t in train])
        self.src_vocab = build_vocab(src_lines, min_freq=config.min_freq)
        self.tgt_vocab = build_vocab(tgt_lines, min_freq=config.min_freq)
        self.train_arrays = self._arrays(src_lines, tgt_lines)
        self.test_arrays = self._arrays(tokenize([s for s, _ in test]), tokenize([t for _, t in test]))
        references: dict[str, list[str]] = {}
        for source, target in test:
            references.setdefault(source, []).append(target)
        self.bleu_sources = build_array(tokenize(list(references)), self.src_vocab, config.num_steps)
        self.bleu_references = list(references.values())

    def _arrays(self, src_lines: list[list[str]], tgt_lines: list[list[str]]) -> tuple[torch.Tensor, ...]:
        src, src_valid = build_array(src_lines, self.src_vocab, self.config.num_steps)
        tgt, tgt_valid = build_array(tgt_lines, self.tgt_vocab, self.config.num_steps)
        return src, src_valid, tgt, tgt_valid

    def model_options(self) -> dict[str, Any]:
        return {"src_vocab_size": len(self.src_vocab), "tgt_vocab_size": len(self.tgt_vocab)}

    def train_batches(self, *, seed: int) -> TensorBatches:
        rt = self.runtime
        return TensorBatches(self.train_arrays, batch_size=self.batch_size, shuffle=True, seed=seed,
                             rank=rt.rank, world_size=rt.world_size)  # fmt: skip

    def count(self, batch: Any) -> int:
        return int(batch[3].sum())

    def _token_loss_sum(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        src, src_valid, tgt, tgt_valid = (t.to(self.runtime.device, non_blocking=True) for t in batch)
        logits = model(src, teacher_forcing_inputs(tgt, self.tgt_vocab[BOS]), src_valid)
        return masked_softmax_cross_entropy(logits, tgt, tgt_valid, reduction="sum"), tgt_valid.sum()

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        total, tokens = self._token_loss_sum(model, batch)
        # The mean over this process's valid tokens; with several processes the trainer weights it by
        # this process's share of the global batch's tokens, so the gradient is the global token mean.
        loss = total / tokens.clamp(min=1)
        return StepOutput(loss, {"loss": total.detach(), "count": tokens})

    @torch.no_grad()
    def eval_sums(self, model: nn.Module) -> dict[str, float]:
        rt = self.runtime
        loss = count = 0.0
        for batch in TensorBatches(self.test_arrays, batch_size=self.eval_batch_size, rank=rt.rank,
                                   world_size=rt.world_size):  # fmt: skip
            total, tokens = self._token_loss_sum(model, batch)
            loss, count = loss + total.item(), count + tokens.item()
        sums = {"loss": loss, "count": count}
        if self.config.bleu:
            sums |= self._bleu_sums(unwrap(model))
        return sums

    def _bleu_sums(self, model: nn.Module) -> dict[str, float]:
        rt = self.runtime
        share = list(range(rt.rank, len(self.bleu_references), rt.world_size))
        hypotheses = []
        for start in range(0, len(share), self.eval_batch_size):
            index = torch.tensor(share[start : start + self.eval_batch_size], dtype=torch.long)
            src, valid = (t[index].to(rt.device) for t in self.bleu_sources)
            outputs = greedy_decode(model, src, valid, bos=self.tgt_vocab[BOS], eos=self.tgt_vocab[EOS],
                                    max_len=self.config.num_steps)  # fmt: skip
            hypotheses += [detokenize_nmt(" ".join(self.tgt_vocab.to_tokens(ids))) for ids in outputs]
        return bleu_stats(hypotheses, [[detokenize_nmt(r) for r in self.bleu_references[i]] for i in share])

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        out = {f"{prefix}_loss": float(sums["loss"]) / max(float(sums["count"]), 1.0)}
        if "bleu_sys_len" in sums:
            out[f"{prefix}_bleu"] = bleu_from_stats(sums)
        return out

    def info(self) -> dict[str, Any]:
        return {**self.data.info(), "num_steps": self.config.num_steps, "num_train": self.num_train,
                "num_test": self.num_test, "model_options": self.model_options()}  # fmt: skip

    def prediction_extras(self) -> dict[str, str]:
        return {"src_vocab.json": self.src_vocab.to_json(), "tgt_vocab.json": self.tgt_vocab.to_json()}


@register_task("translation", TranslationTaskConfig)
def build_translation(data: TranslationData, config: TranslationTaskConfig, **kwargs: Any) -> Task:
    return TranslationTask(data, config, **kwargs)
