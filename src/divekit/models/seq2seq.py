"""Recurrent sequence-to-sequence models (notes §6.10 seq2seq, §6.11 attention).

- ``seq2seq``: a GRU encoder; a GRU decoder that sees the encoder's final
  state (its *context*) concatenated to every input (Sutskever et al., 2014;
  Cho et al., 2014).
- ``seq2seq-attention``: the decoder instead attends, at every step, over all
  the encoder's outputs with additive attention, its previous hidden state
  being the query (Bahdanau et al., 2015).

Tensors are batch-first; PyTorch's GRU keeps its state as ``(layers, N, H)``
even with ``batch_first=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from divekit.models.registry import register_model
from divekit.nn.attention import AdditiveAttention
from divekit.nn.encoder_decoder import Decoder, Encoder, EncoderDecoder

# How the book trains its translation models on fra-eng (600 pairs): Adam, batch 64, 10 steps, clipping at 1.
# The default data set is the embedded numbers-fr, so `divekit train seq2seq` works offline.
BOOK_RECIPE = {
    "data.name": "numbers-fr", "data.batch_size": 64, "optim.optimizer": "adam", "optim.lr": 0.005,
    "optim.clip_grad": 1.0, "model.init": "xavier", "task.options.num_steps": 10,
}  # fmt: skip


def xavier_gru_(rnn: nn.GRU) -> nn.GRU:
    """Xavier-uniform GRU weight matrices, as the book initialises its seq2seq models."""
    for name, param in rnn.named_parameters():
        if name.startswith("weight"):
            nn.init.xavier_uniform_(param)
    return rnn


@dataclass
class GRUDecoderState:
    """The decoder's GRU state ``(layers, N, H)`` and the fixed context ``(N, H)``."""

    hidden: torch.Tensor
    context: torch.Tensor


@dataclass
class AttentionDecoderState:
    """The encoder's outputs ``(N, S, H)`` and valid lengths, and the decoder's GRU state."""

    enc_outputs: torch.Tensor
    hidden: torch.Tensor
    enc_valid_lens: torch.Tensor | None


class Seq2SeqEncoder(Encoder):
    """Embedding and a multilayer GRU; returns all outputs and the final state.

    Args:
        vocab_size: source vocabulary size.
        embed_size: embedding width.
        num_hiddens: GRU width.
        num_layers: GRU layers.
        dropout: dropout between GRU layers.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
                 dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = xavier_gru_(nn.GRU(embed_size, num_hiddens, num_layers, dropout=dropout, batch_first=True))

    def forward(self, X: torch.Tensor, valid_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``X (N, S)`` -> outputs ``(N, S, H)`` and state ``(layers, N, H)``.

        As in the book, padding steps run through the GRU too; the decoder
        learns to expect their effect on the final state.
        """
        outputs, state = self.rnn(self.embedding(X))
        return outputs, state


class _GRUDecoder(Decoder):
    """Embedding, a GRU whose inputs are the embedded token and a context of width ``num_hiddens``, and logits.

    Args:
        vocab_size: target vocabulary size.
        embed_size, num_hiddens, num_layers, dropout: as :class:`Seq2SeqEncoder`.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
                 dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = xavier_gru_(nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout,
                                      batch_first=True))  # fmt: skip
        self.dense = nn.Linear(num_hiddens, vocab_size)


class Seq2SeqDecoder(_GRUDecoder):
    """A GRU decoder whose every input is concatenated with the encoder's final top-layer state.

    Args: as :class:`Seq2SeqEncoder`, with the target vocabulary size.
    """

    def init_state(self, enc_outputs: tuple[torch.Tensor, torch.Tensor], enc_valid_lens: torch.Tensor | None = None,
                   *, use_cache: bool = True) -> GRUDecoderState:  # fmt: skip
        _, state = enc_outputs
        # The context stays the encoder's final state for the whole output (the book's code reads
        # the *decoder's* latest state instead once prediction starts, a known slip).
        return GRUDecoderState(hidden=state, context=state[-1])

    def forward(self, X: torch.Tensor, state: GRUDecoderState) -> tuple[torch.Tensor, GRUDecoderState]:
        """``X (N, T)`` -> logits ``(N, T, V)``."""
        embedded = self.embedding(X)  # (N, T, E)
        context = state.context.unsqueeze(1).expand(-1, X.shape[1], -1)  # (N, T, H): the same at every step
        outputs, hidden = self.rnn(torch.cat([embedded, context], dim=2), state.hidden)
        return self.dense(outputs), GRUDecoderState(hidden, state.context)

    def reorder_state(self, state: GRUDecoderState, index: torch.Tensor) -> GRUDecoderState:
        return GRUDecoderState(state.hidden.index_select(1, index), state.context.index_select(0, index))


class Seq2SeqAttentionDecoder(_GRUDecoder):
    """A GRU decoder with Bahdanau (additive) attention over the encoder's outputs.

    At step ``t`` the query is the decoder's top-layer state after step
    ``t - 1``; the attention's output (the context) is concatenated to the
    embedded input token.

    Args: as :class:`Seq2SeqDecoder`.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
                 dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__(vocab_size, embed_size, num_hiddens, num_layers, dropout)
        self.attention = AdditiveAttention(num_hiddens, num_hiddens, num_hiddens, dropout)

    def init_state(self, enc_outputs: tuple[torch.Tensor, torch.Tensor], enc_valid_lens: torch.Tensor | None = None,
                   *, use_cache: bool = True) -> AttentionDecoderState:  # fmt: skip
        outputs, hidden = enc_outputs
        return AttentionDecoderState(outputs, hidden, enc_valid_lens)

    def forward(self, X: torch.Tensor, state: AttentionDecoderState) -> tuple[torch.Tensor, AttentionDecoderState]:
        """``X (N, T)`` -> logits ``(N, T, V)``, one GRU step per target position."""
        embedded = self.embedding(X)  # (N, T, E)
        hidden, enc, lens = state.hidden, state.enc_outputs, state.enc_valid_lens
        outputs = []
        for t in range(X.shape[1]):
            query = hidden[-1].unsqueeze(1)  # (N, 1, H)
            context = self.attention(query, enc, enc, lens)  # (N, 1, H)
            step = torch.cat([context, embedded[:, t : t + 1]], dim=2)  # (N, 1, H + E)
            out, hidden = self.rnn(step, hidden)
            outputs.append(out)
        logits = self.dense(torch.cat(outputs, dim=1))  # (N, T, V)
        return logits, AttentionDecoderState(enc, hidden, lens)

    def reorder_state(self, state: AttentionDecoderState, index: torch.Tensor) -> AttentionDecoderState:
        lens = state.enc_valid_lens.index_select(0, index) if state.enc_valid_lens is not None else None
        return AttentionDecoderState(state.enc_outputs.index_select(0, index), state.hidden.index_select(1, index), lens)

    def cross_attention_weights(self) -> list[torch.Tensor]:
        weights = self.attention.attention_weights  # (N, T, S), T = 1 when decoding step by step
        return [] if weights is None else [weights.unsqueeze(1)]  # one layer, one head


@register_model("seq2seq", task="seq2seq", recipe={**BOOK_RECIPE, "train.epochs": 300})
def seq2seq(*, src_vocab_size: int, tgt_vocab_size: int, embed_size: int = 32, num_hiddens: int = 32,
            num_layers: int = 2, dropout: float = 0.1) -> EncoderDecoder:  # fmt: skip
    """GRU encoder-decoder; the encoder's final state is the decoder's context (notes §6.10)."""
    return EncoderDecoder(
        Seq2SeqEncoder(src_vocab_size, embed_size, num_hiddens, num_layers, dropout),
        Seq2SeqDecoder(tgt_vocab_size, embed_size, num_hiddens, num_layers, dropout),
    )


@register_model("seq2seq-attention", task="seq2seq", recipe={**BOOK_RECIPE, "train.epochs": 250})
def seq2seq_attention(*, src_vocab_size: int, tgt_vocab_size: int, embed_size: int = 32, num_hiddens: int = 32,
                      num_layers: int = 2, dropout: float = 0.1) -> EncoderDecoder:  # fmt: skip
    """GRU encoder-decoder with Bahdanau additive attention over the encoder's outputs (notes §6.11)."""
    return EncoderDecoder(
        Seq2SeqEncoder(src_vocab_size, embed_size, num_hiddens, num_layers, dropout),
        Seq2SeqAttentionDecoder(tgt_vocab_size, embed_size, num_hiddens, num_layers, dropout),
    )
