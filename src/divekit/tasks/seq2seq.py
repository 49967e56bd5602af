"""Sequence to sequence (notes §6.10): teacher-forced token loss, corpus BLEU.

Training feeds the decoder the target shifted right behind ``<bos>``
(teacher forcing) and scores each position with softmax cross-entropy,
ignoring padding. The loss is the mean over the batch's *valid* target
tokens; the book's loss averages each sequence over all ``num_steps``
positions, padding included, so short sentences weigh less than they should.
Throughput counts target tokens.

Evaluation reports the same loss on the held-out pairs and, when asked,
corpus BLEU (sacrebleu) of greedy translations of the held-out sources
against all their references.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.sources.translation import TranslationOptions, TranslationSource, vocab_words
from divekit.data.text import Vocab
from divekit.data.translation import BOS, EOS, detokenize_nmt
from divekit.inference.bleu import bleu_from_stats, bleu_stats
from divekit.inference.decoding import greedy_decode
from divekit.nn.attention import sequence_mask
from divekit.nn.params import unwrap
from divekit.tasks.base import Objective, StepOutput, TaskEntry, output_mismatch, register_task


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


def first(output: Any) -> Any:
    """The logits of a model that returns ``(logits, state)``, as the book's ``EncoderDecoder`` does."""
    return output[0] if isinstance(output, tuple) else output


def as_pairs(batch: Any) -> tuple[torch.Tensor, ...]:
    """``(src, src_valid, tgt, tgt_valid)``; sources with several references ``(N, R, T)`` become one row per reference."""
    src, src_valid, tgt, tgt_valid = batch[:4]
    if tgt.dim() == 2:
        return src, src_valid, tgt, tgt_valid
    refs = tgt.shape[1]
    keep = tgt_valid.reshape(-1) > 0  # references of valid length 0 pad the groups
    return (src.repeat_interleave(refs, 0)[keep], src_valid.repeat_interleave(refs, 0)[keep],
            tgt.reshape(-1, tgt.shape[-1])[keep], tgt_valid.reshape(-1)[keep])  # fmt: skip


class Seq2Seq(Objective):
    """Masked token cross-entropy of an encoder-decoder ``(src, dec_in, src_valid) -> logits (N, T, V)``.

    Batches are ``(src, src_valid, tgt, tgt_valid)`` (evaluation batches may
    give several references per source, ``tgt (N, R, T)``, plus their text).

    Args:
        bos: the target vocabulary's ``<bos>`` id (teacher forcing, decoding).
        eos: its ``<eos>`` id; needed for ``bleu``.
        bleu: greedy-translate evaluation sources and report corpus BLEU (monitored, higher is better).
        vocab: the target vocabulary, to score words (without it, ids are the words).
        detokenize: turns space-joined words into text as written, for sacrebleu.
        vocab_size: when known, the logits' last dimension must equal it.
    """

    task = "seq2seq"
    unit = "tokens"

    def __init__(self, *, bos: int, eos: int | None = None, bleu: bool = False, vocab: Vocab | None = None,
                 detokenize: Callable[[str], str] = lambda text: text, vocab_size: int | None = None) -> None:  # fmt: skip
        if bleu and eos is None:
            raise ValueError("BLEU needs the <eos> id to know where a translation ends: pass eos=")
        self.bos, self.eos, self.bleu, self.vocab, self.detokenize = bos, eos, bleu, vocab, detokenize
        self.vocab_size = vocab_size
        self.monitor, self.monitor_mode = ("bleu", "max") if bleu else ("loss", "min")

    def _token_loss_sum(self, model: nn.Module, pairs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        src, src_valid, tgt, tgt_valid = pairs
        logits = first(model(src, teacher_forcing_inputs(tgt, self.bos), src_valid))
        return masked_softmax_cross_entropy(logits, tgt, tgt_valid, reduction="sum"), tgt_valid.sum()

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        total, tokens = self._token_loss_sum(model, batch[:4])
        # The mean over this process's valid tokens; with several processes the trainer weights it by
        # this process's share of the global batch's tokens, so the gradient is the global token mean.
        loss = total / tokens.clamp(min=1)
        return StepOutput(loss, {"loss": total.detach(), "count": tokens})

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor | float]:
        total, tokens = self._token_loss_sum(model, as_pairs(batch))
        sums: dict[str, torch.Tensor | float] = {"loss": total, "count": tokens}
        if self.bleu:
            sums |= self._bleu_sums(unwrap(model), batch)
        return sums

    def _bleu_sums(self, model: nn.Module, batch: Any) -> dict[str, float]:
        src, src_valid, tgt, tgt_valid = batch[:4]
        outputs = greedy_decode(model, src, src_valid, bos=self.bos, eos=self.eos, max_len=tgt.shape[-1])  # type: ignore[arg-type]
        hypotheses = [self.detokenize(" ".join(vocab_words(self.vocab, ids))) for ids in outputs]
        if len(batch) > 4:  # the references as text
            references = [list(refs) for refs in batch[4]]
        else:
            groups = zip(tgt.reshape(len(src), -1, tgt.shape[-1]).tolist(), tgt_valid.reshape(len(src), -1).tolist())
            references = [[self.detokenize(" ".join(vocab_words(self.vocab, ids[:n - 1 if ids[n - 1] == self.eos else n])))
                           for ids, n in zip(rows, lens) if n > 0] for rows, lens in groups]  # fmt: skip
        return bleu_stats(hypotheses, references)

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        out = {f"{prefix}_loss": float(sums["loss"]) / max(float(sums["count"]), 1.0)}
        if "bleu_sys_len" in sums:
            out[f"{prefix}_bleu"] = bleu_from_stats(sums)
        return out

    def check_output(self, model: nn.Module, batch: Any) -> None:
        src, src_valid, tgt, _ = as_pairs(batch)
        out = first(model(src, teacher_forcing_inputs(tgt, self.bos), src_valid))
        width = self.vocab_size or "tgt_vocab_size"
        expected = f"logits of shape ({tgt.shape[0]}, {tgt.shape[1]}, {width})"
        if not torch.is_tensor(out) or tuple(out.shape[:2]) != tuple(tgt.shape) or out.dim() != 3:
            raise output_mismatch("seq2seq", out, expected)
        if self.vocab_size is not None and out.shape[-1] != self.vocab_size:
            raise output_mismatch("seq2seq", out, expected)


def _objective(source: TranslationSource, options: TranslationOptions) -> Seq2Seq:
    vocab = source.tgt_vocab
    return Seq2Seq(bos=vocab[BOS], eos=vocab[EOS], bleu=options.bleu, vocab=vocab, detokenize=detokenize_nmt,
                   vocab_size=len(vocab))  # fmt: skip


register_task(TaskEntry(
    name="seq2seq",
    options=TranslationOptions,
    source=TranslationSource,
    objective=_objective,
    default_objective=None,  # teacher forcing needs the <bos> id: Seq2Seq(bos=...)
    description="(source, target-in, source lengths) -> target logits; masked cross-entropy, BLEU (notes §6.10)",
), module=__name__)  # fmt: skip
