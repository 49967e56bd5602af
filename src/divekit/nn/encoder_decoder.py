"""The encoder-decoder architecture (notes §6.9 编码器-解码器架构).

The encoder turns the source sequence into an intermediate representation;
the decoder turns that representation, one target token after another, into
the output sequence. Any encoder fits any decoder that accepts its outputs:
GRUs, attention over GRU states, Transformers.

Contract (the ``seq2seq`` model family):

- ``encoder(X, valid_lens)`` -> ``enc_outputs`` (whatever the decoder needs);
- ``decoder.init_state(enc_outputs, valid_lens, use_cache=...)`` -> ``state``;
- ``decoder(Y, state)`` -> ``(logits (N, T, V), state)``, where ``Y (N, T)``
  holds target tokens. Fed one step at a time, the state carries everything
  earlier steps computed; ``use_cache=False`` asks a decoder that keeps a
  key-value cache not to, so the whole prefix must be fed each time;
- ``decoder.reorder_state(state, index)`` keeps batch entries ``index`` (beam search);
- ``EncoderDecoder(X, Y_in, valid_lens)`` -> logits ``(N, T, V)`` (teacher forcing).
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn


class Encoder(nn.Module, abc.ABC):
    """Maps a source batch ``X (N, S)`` of token ids to a representation."""

    @abc.abstractmethod
    def forward(self, X: torch.Tensor, valid_lens: torch.Tensor | None = None) -> Any: ...

    def self_attention_weights(self) -> list[torch.Tensor]:
        """The last recorded self-attention weights, one ``(N, heads, S, S)`` per layer (none by default)."""
        return []


class Decoder(nn.Module, abc.ABC):
    """Maps target tokens and a state (built from the encoder's outputs) to logits."""

    @abc.abstractmethod
    def init_state(self, enc_outputs: Any, enc_valid_lens: torch.Tensor | None = None, *,
                   use_cache: bool = True) -> Any: ...  # fmt: skip

    @abc.abstractmethod
    def forward(self, X: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...

    @abc.abstractmethod
    def reorder_state(self, state: Any, index: torch.Tensor) -> Any:
        """The state of batch entries ``index`` only, in that order."""

    def cross_attention_weights(self) -> list[torch.Tensor]:
        """The last recorded attention to the source, one ``(N, heads, T, S)`` per layer (none by default)."""
        return []


class EncoderDecoder(nn.Module):
    """An encoder and a decoder trained together (notes §6.9).

    Args:
        encoder: the source encoder.
        decoder: the target decoder.
    """

    def __init__(self, encoder: Encoder, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, enc_X: torch.Tensor, dec_X: torch.Tensor, enc_valid_lens: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(N, T, V)`` for target inputs ``dec_X (N, T)`` given sources ``enc_X (N, S)``."""
        enc_outputs = self.encoder(enc_X, enc_valid_lens)
        state = self.decoder.init_state(enc_outputs, enc_valid_lens, use_cache=False)
        logits, _ = self.decoder(dec_X, state)
        return logits
