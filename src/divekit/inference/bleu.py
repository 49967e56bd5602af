"""BLEU: how many of a translation's n-grams appear in the reference (Papineni et al., 2002).

Two versions:

- :func:`book_bleu`, the book's sentence score, to compare with its tables:
  ``exp(min(0, 1 - len_label / len_pred)) * prod_{n=1..k} p_n ^ (1 / 2^n)``
  with ``p_n`` the clipped n-gram precision;
- corpus BLEU with sacrebleu (4-grams, geometric mean, one brevity penalty
  for the whole corpus), the number papers report. Its sufficient statistics
  (:func:`bleu_stats`) add up across batches and processes, so a distributed
  evaluation sums them and computes the score once (:func:`bleu_from_stats`).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

MAX_ORDER = 4


def book_bleu(pred_seq: str, label_seq: str, k: int = 2) -> float:
    """The book's BLEU of one predicted sentence against one reference (space-separated tokens).

    A prediction shorter than ``k`` tokens has no ``k``-grams to be precise
    about: it scores 0 (the book's code divides by zero there).
    """
    pred_tokens, label_tokens = pred_seq.split(), label_seq.split()
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    if len_pred < k or len_label == 0:
        return 0.0
    score = math.exp(min(0.0, 1.0 - len_label / len_pred))
    for n in range(1, k + 1):
        label_counts = collections.Counter(tuple(label_tokens[i : i + n]) for i in range(len_label - n + 1))
        pred_counts = collections.Counter(tuple(pred_tokens[i : i + n]) for i in range(len_pred - n + 1))
        matches = sum(min(count, label_counts[gram]) for gram, count in pred_counts.items())
        score *= math.pow(matches / (len_pred - n + 1), math.pow(0.5, n))
    return score


def stat_keys() -> list[str]:
    """Names of the additive BLEU statistics, as metric sums."""
    return [f"bleu_correct_{n}" for n in range(1, MAX_ORDER + 1)] + [
        f"bleu_total_{n}" for n in range(1, MAX_ORDER + 1)
    ] + ["bleu_sys_len", "bleu_ref_len"]  # fmt: skip


def bleu_stats(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """sacrebleu's sufficient statistics of ``hypotheses`` against their references.

    Give text as written (sacrebleu tokenises it itself); undo the book's
    pre-processing first with :func:`divekit.data.translation.detokenize_nmt`.

    Args:
        hypotheses: one string per segment.
        references: one list of reference strings per segment (as many as it has).
    """
    from sacrebleu.metrics import BLEU

    if not hypotheses:
        return dict.fromkeys(stat_keys(), 0.0)
    width = max(len(refs) for refs in references)
    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]
    score = BLEU().corpus_score(list(hypotheses), streams)
    stats = {f"bleu_correct_{n + 1}": float(c) for n, c in enumerate(score.counts)}
    stats |= {f"bleu_total_{n + 1}": float(t) for n, t in enumerate(score.totals)}
    return stats | {"bleu_sys_len": float(score.sys_len), "bleu_ref_len": float(score.ref_len)}


def bleu_from_stats(stats: dict[str, float]) -> float:
    """Corpus BLEU (0-100, sacrebleu's defaults) from summed :func:`bleu_stats`."""
    from sacrebleu.metrics import BLEU

    if not stats.get("bleu_sys_len"):
        return 0.0
    correct = [int(stats[f"bleu_correct_{n}"]) for n in range(1, MAX_ORDER + 1)]
    total = [int(stats[f"bleu_total_{n}"]) for n in range(1, MAX_ORDER + 1)]
    score = BLEU.compute_bleu(correct, total, int(stats["bleu_sys_len"]), int(stats["bleu_ref_len"]),
                              smooth_method="exp")  # fmt: skip
    return float(score.score)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """sacrebleu corpus BLEU (0-100) of ``hypotheses`` against one or more references each."""
    return bleu_from_stats(bleu_stats(hypotheses, references))
