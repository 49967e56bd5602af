"""Recurrent language models (notes §6.4.3 RNNModel, §6.5-§6.8): RNN, GRU and LSTM.

Every model follows the ``language-model`` contract: token ids ``(N, T)``
and an optional state in, logits ``(N, T, vocab_size)`` and the new state
out. The recurrent layer is PyTorch's (``nn.RNN/GRU/LSTM``) or divekit's
from-scratch twin (``scratch=True``); both have the same parameter names, so
their checkpoints are interchangeable.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from divekit.models.registry import register_model
from divekit.nn import recurrent

# The book's character-level recipe (§6.4.3): batch 32, 35 steps, SGD lr 1, clipping at 1, 500 epochs.
LM_RECIPE = {
    "data.name": "pydoc",
    "data.batch_size": 32,
    "optim.optimizer": "sgd",
    "optim.lr": 1.0,
    "optim.clip_grad": 1.0,
    "train.epochs": 500,
}

RecurrentState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class RNNModel(nn.Module):
    """A recurrent layer between an input encoding and a linear output layer (the notes' ``RNNModel``).

    The input ids are one-hot encoded, as in the book, or embedded when
    ``embed_size`` is given. The output layer reads ``num_directions *
    hidden_size`` features, so a bidirectional layer doubles its width (§6.8).

    Args:
        rnn_layer: any time-major recurrent layer with ``input_size``,
            ``hidden_size``, ``num_layers`` and ``bidirectional`` attributes
            (``nn.RNN/GRU/LSTM`` or :mod:`divekit.nn.recurrent`'s twins).
        vocab_size: the number of tokens.
        embed_size: embed tokens in this many dimensions instead of one-hot.
    """

    def __init__(self, rnn_layer: nn.Module, vocab_size: int, *, embed_size: int | None = None) -> None:
        super().__init__()
        width = embed_size or vocab_size
        if rnn_layer.input_size != width:
            raise ValueError(f"the recurrent layer reads {rnn_layer.input_size} features but the input "
                             f"encoding gives {width}")  # fmt: skip
        if getattr(rnn_layer, "batch_first", False):
            raise ValueError("RNNModel feeds the recurrent layer time-major input: build it with batch_first=False")
        self.rnn = rnn_layer
        self.vocab_size = vocab_size
        self.num_hiddens = rnn_layer.hidden_size
        self.num_directions = 2 if rnn_layer.bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embed_size) if embed_size else None
        self.linear = nn.Linear(self.num_directions * self.num_hiddens, vocab_size)

    @property
    def is_lstm(self) -> bool:
        return isinstance(self.rnn, (nn.LSTM, recurrent.LSTM))

    def encode(self, X: torch.Tensor) -> torch.Tensor:
        """Token ids ``(N, T)`` -> time-major features ``(T, N, E)`` (one-hot: E = vocab size)."""
        ids = X.T  # (T, N): recurrent layers are time-major by default
        if self.embedding is not None:
            return self.embedding(ids)
        return F.one_hot(ids, self.vocab_size).to(self.linear.weight.dtype)

    def forward(self, X: torch.Tensor, state: RecurrentState | None = None) -> tuple[torch.Tensor, RecurrentState]:
        Y, state = self.rnn(self.encode(X), state)  # Y: (T, N, D * H)
        return self.linear(Y.transpose(0, 1)), state  # (N, T, vocab_size)

    def begin_state(self, batch_size: int = 1, *, device: torch.device | str | None = None) -> RecurrentState:
        """The zero state ``(num_layers * num_directions, N, H)``; for an LSTM the pair ``(h, c)``."""
        shape = (self.num_directions * self.rnn.num_layers, batch_size, self.num_hiddens)
        h = torch.zeros(shape, device=device, dtype=self.linear.weight.dtype)
        return (h, torch.zeros_like(h)) if self.is_lstm else h


def _check_sizes(*, dropout: float, **sizes: int | None) -> None:
    for name, value in sizes.items():
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def recurrent_lm(torch_layer: type[nn.Module], scratch_layer: type[nn.Module], *, scratch: bool, fast: bool,
                 vocab_size: int, num_hiddens: int, num_layers: int, bidirectional: bool, embed_size: int | None,
                 dropout: float) -> RNNModel:  # fmt: skip
    """An :class:`RNNModel` on PyTorch's layer or divekit's scratch twin (``fast``: its fast path), sizes checked."""
    _check_sizes(vocab_size=vocab_size, num_hiddens=num_hiddens, num_layers=num_layers, embed_size=embed_size,
                 dropout=dropout)  # fmt: skip
    if fast and not scratch:
        raise ValueError("fast=True is the scratch layers' fast path: set scratch=True as well")
    layer_cls = partial(scratch_layer, fast=fast) if scratch else torch_layer
    layer = layer_cls(embed_size or vocab_size, num_hiddens, num_layers=num_layers, bidirectional=bidirectional,
                      dropout=dropout)  # fmt: skip
    return RNNModel(layer, vocab_size, embed_size=embed_size)


# Every variant takes the same keyword options; ``scratch=True`` uses divekit's own layer instead of torch.nn's,
# ``fast=True`` (with ``scratch``) its fast path (divekit.nn.recurrent_fast).
@register_model("rnn-lm", task="language-model", recipe=LM_RECIPE)
def rnn_lm(*, vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 1, bidirectional: bool = False,
           scratch: bool = False, embed_size: int | None = None, dropout: float = 0.0, fast: bool = False) -> RNNModel:  # fmt: skip
    """Character or word language model on a tanh RNN (§6.4)"""
    return recurrent_lm(nn.RNN, recurrent.RNN, scratch=scratch, fast=fast, vocab_size=vocab_size,
                        num_hiddens=num_hiddens, num_layers=num_layers, bidirectional=bidirectional,
                        embed_size=embed_size, dropout=dropout)  # fmt: skip


@register_model("gru-lm", task="language-model", recipe=LM_RECIPE)
def gru_lm(*, vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 1, bidirectional: bool = False,
           scratch: bool = False, embed_size: int | None = None, dropout: float = 0.0, fast: bool = False) -> RNNModel:  # fmt: skip
    """Language model on a gated recurrent unit (§6.5)"""
    return recurrent_lm(nn.GRU, recurrent.GRU, scratch=scratch, fast=fast, vocab_size=vocab_size,
                        num_hiddens=num_hiddens, num_layers=num_layers, bidirectional=bidirectional,
                        embed_size=embed_size, dropout=dropout)  # fmt: skip


@register_model("lstm-lm", task="language-model", recipe=LM_RECIPE)
def lstm_lm(*, vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 1, bidirectional: bool = False,
            scratch: bool = False, embed_size: int | None = None, dropout: float = 0.0, fast: bool = False) -> RNNModel:  # fmt: skip
    """Language model on a long short-term memory (§6.6-6.8)"""
    return recurrent_lm(nn.LSTM, recurrent.LSTM, scratch=scratch, fast=fast, vocab_size=vocab_size,
                        num_hiddens=num_hiddens, num_layers=num_layers, bidirectional=bidirectional,
                        embed_size=embed_size, dropout=dropout)  # fmt: skip
