"""Generating target sequences with a trained encoder-decoder (notes §6.10, §6.13.2).

- :func:`greedy_decode`: the most probable token at every step, for a whole
  batch at once. With ``use_cache`` the decoder is fed only the newest token
  and keeps what earlier steps computed (for the Transformer, its key-value
  cache); without it, the whole prefix is fed again at every step. Both give
  the same tokens; the benchmark measures the difference in time.
- :func:`beam_search`: keeps the ``beam_size`` most probable prefixes, and
  picks the finished sequence with the best length-normalised log-probability
  ``log P / L^alpha``. A beam of 1 is greedy decoding.

Both run the model in eval mode (dropout off) and restore its mode after:
predicting in training mode, with dropout on, is a known slip of the book's code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no gradients inside the block; the previous mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _cut_at_eos(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


def greedy_decode(
    model: nn.Module,
    src: torch.Tensor,
    src_valid_lens: torch.Tensor,
    *,
    bos: int,
    eos: int,
    max_len: int,
    use_cache: bool = True,
    stop_at_eos: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """Greedy decoding of a batch of sources; each output ends before its first ``<eos>``.

    Args:
        model: an :class:`~divekit.nn.encoder_decoder.EncoderDecoder`.
        src: source ids ``(N, S)``, on the model's device.
        src_valid_lens: ``(N,)``.
        bos, eos: the target vocabulary's ``<bos>`` and ``<eos>`` ids.
        max_len: at most this many tokens per output (``<eos>`` included).
        use_cache: feed one token per step and let the decoder keep its state
            (False: feed the whole prefix every step, recomputing everything).
        stop_at_eos: stop once every output has produced ``<eos>`` (False:
            always run ``max_len`` steps, as a benchmark wants).
        on_step: called with the step number after each step (e.g. to read
            attention weights).
    """
    with eval_mode(model):
        enc_outputs = model.encoder(src, src_valid_lens)
        state = model.decoder.init_state(enc_outputs, src_valid_lens, use_cache=use_cache)
        tokens = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)  # (N, 1 + steps)
        finished = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for step in range(max_len):
            if use_cache:
                logits, state = model.decoder(tokens[:, -1:], state)
            else:
                fresh = model.decoder.init_state(enc_outputs, src_valid_lens, use_cache=False)
                logits, _ = model.decoder(tokens, fresh)
            next_token = logits[:, -1].argmax(dim=-1)  # (N,)
            tokens = torch.cat([tokens, next_token.unsqueeze(1)], dim=1)  # (N, 1 + step + 1)
            if on_step is not None:
                on_step(step)
            finished |= next_token == eos
            if stop_at_eos and bool(finished.all()):
                break
    return [_cut_at_eos(row, eos) for row in tokens[:, 1:].tolist()]


@dataclass
class _Hypothesis:
    """A prefix (without ``<bos>``), its total log-probability, and the beam it grew from."""

    tokens: list[int]
    score: float
    parent: int = 0

    def normalised(self, length_penalty: float) -> float:
        return self.score / max(len(self.tokens), 1) ** length_penalty


def _best_extensions(alive: list[_Hypothesis], log_probs: torch.Tensor, beam_size: int) -> list[_Hypothesis]:
    """The ``beam_size`` most probable one-token extensions of the ``alive`` prefixes."""
    scores = torch.tensor([h.score for h in alive], device=log_probs.device)
    totals = (scores[:, None] + log_probs).reshape(-1)  # (beams * V,): every prefix with every next token
    top_scores, top_index = totals.topk(min(beam_size, totals.numel()))
    extensions = []
    for score, index in zip(top_scores.tolist(), top_index.tolist()):
        beam, token = divmod(index, log_probs.shape[-1])
        extensions.append(_Hypothesis([*alive[beam].tokens, token], score, beam))
    return extensions


def beam_search(
    model: nn.Module,
    src: torch.Tensor,
    src_valid_len: torch.Tensor,
    *,
    bos: int,
    eos: int,
    max_len: int,
    beam_size: int,
    length_penalty: float = 0.75,
) -> list[int]:
    """The best output for one source ``(1, S)`` under beam search (without its ``<eos>``).

    At each step every alive prefix is extended by every token; the
    ``beam_size`` best extensions by total log-probability survive, and
    those ending in ``<eos>`` leave the beam as finished candidates. Search
    stops when ``beam_size`` candidates are finished, none is alive, or after
    ``max_len`` steps; the winner maximises ``log P / L^length_penalty``
    (``L`` counting ``<eos>``).
    """
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam size and max_len must be at least 1, got {beam_size} and {max_len}")
    with eval_mode(model):
        state = model.decoder.init_state(model.encoder(src, src_valid_len), src_valid_len, use_cache=True)
        alive, finished = [_Hypothesis([], 0.0)], []
        inputs = torch.full((1, 1), bos, dtype=torch.long, device=src.device)
        for _ in range(max_len):
            logits, state = model.decoder(inputs, state)
            extensions = _best_extensions(alive, F.log_softmax(logits[:, -1].float(), dim=-1), beam_size)
            finished += [h for h in extensions if h.tokens[-1] == eos]
            alive = [h for h in extensions if h.tokens[-1] != eos]
            if len(finished) >= beam_size or not alive:
                break
            state = model.decoder.reorder_state(state, torch.tensor([h.parent for h in alive], device=src.device))
            inputs = torch.tensor([[h.tokens[-1]] for h in alive], device=src.device)
        candidates = finished if len(finished) >= beam_size else finished + alive  # unfinished only at max_len
        best = max(candidates, key=lambda h: h.normalised(length_penalty))
    return best.tokens[:-1] if best.tokens and best.tokens[-1] == eos else best.tokens
