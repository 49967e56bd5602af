"""Transformer building blocks (notes §6.12.4 Positional Encoding, §6.13 Transformer).

- :class:`PositionalEncoding`: sinusoids added to the embeddings, since
  self-attention alone ignores order (§6.12.4).
- :class:`PositionWiseFFN`: the same two-layer MLP at every position.
- :class:`AddNorm`: residual connection and layer normalisation, after the
  sublayer as in the notes and the original paper (post-norm), or before it
  (pre-norm, which trains deep stacks more stably).
- :class:`TransformerEncoderBlock` (§6.13.1): self-attention, then the FFN.
- :class:`TransformerDecoderBlock` (§6.13.2-6.13.3): causal (masked)
  self-attention, cross-attention to the encoder's outputs, then the FFN.

Parameter names follow the book; tests copy the weights of
``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` across and
compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from divekit.nn.multihead_attention import KVCache, MultiHeadAttention


class PositionalEncoding(nn.Module):
    """Add ``P[pos, 2i] = sin(pos / 10000^(2i/d))``, ``P[pos, 2i+1] = cos(...)``, then dropout.

    Args:
        num_hiddens: the width ``d`` of the embeddings.
        dropout: dropout after the addition.
        max_len: the longest sequence (plus offset) supported.
    """

    def __init__(self, num_hiddens: int, dropout: float = 0.0, max_len: int = 1000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (max_len, 1)
        frequencies = torch.pow(10000.0, torch.arange(0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)
        angles = position / frequencies  # (max_len, ceil(d / 2))
        P = torch.zeros(1, max_len, num_hiddens)
        P[0, :, 0::2] = torch.sin(angles)
        P[0, :, 1::2] = torch.cos(angles[:, : num_hiddens // 2])
        self.register_buffer("P", P, persistent=False)  # a function of the shape: not saved in checkpoints

    @property
    def max_len(self) -> int:
        return self.P.shape[1]

    def forward(self, X: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """``X (N, T, d)`` plus the encodings of positions ``offset .. offset + T - 1``."""
        end = offset + X.shape[1]
        if end > self.max_len:
            raise ValueError(f"positions up to {end} requested but the encoding was built for {self.max_len}")
        return self.dropout(X + self.P[:, offset:end].to(X.dtype))


class PositionWiseFFN(nn.Module):
    """``dense2(relu(dense1(X)))`` applied to every position alike.

    Args:
        num_hiddens: input and output width.
        ffn_num_hiddens: hidden width.
    """

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int) -> None:
        super().__init__()
        self.dense1 = nn.Linear(num_hiddens, ffn_num_hiddens)
        self.relu = nn.ReLU()
        self.dense2 = nn.Linear(ffn_num_hiddens, num_hiddens)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.dense2(self.relu(self.dense1(X)))


class AddNorm(nn.Module):
    """Residual connection with layer normalisation.

    Post-norm (the notes): ``LN(X + dropout(sublayer(X)))``.
    Pre-norm (``norm_first``): ``X + dropout(sublayer(LN(X)))``.

    Args:
        num_hiddens: the normalised width.
        dropout: dropout on the sublayer's output.
        norm_first: pre-norm instead of post-norm.
    """

    def __init__(self, num_hiddens: int, dropout: float = 0.0, *, norm_first: bool = False) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.ln = nn.LayerNorm(num_hiddens)
        self.norm_first = norm_first

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """The book's post-norm ``LN(dropout(Y) + X)``, for a sublayer output ``Y``."""
        return self.ln(self.dropout(Y) + X)

    def residual(self, X: torch.Tensor, sublayer: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Wrap ``sublayer`` around ``X`` with this connection (post- or pre-norm)."""
        if self.norm_first:
            return X + self.dropout(sublayer(self.ln(X)))
        return self(X, sublayer(X))


class TransformerEncoderBlock(nn.Module):
    """Self-attention and a position-wise FFN, each in an :class:`AddNorm` (notes §6.13.1).

    Args:
        num_hiddens: model width ``d``.
        ffn_num_hiddens: hidden width of the FFN.
        num_heads: attention heads.
        dropout: dropout on attention weights and sublayer outputs.
        bias: biases in the attention projections.
        norm_first: pre-norm instead of post-norm.
        attention: ``"scratch"`` or ``"sdpa"``.
    """

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float = 0.0, *,
                 bias: bool = False, norm_first: bool = False, attention: str = "scratch") -> None:  # fmt: skip
        super().__init__()
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout=dropout, bias=bias, impl=attention)
        self.addnorm1 = AddNorm(num_hiddens, dropout, norm_first=norm_first)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm2 = AddNorm(num_hiddens, dropout, norm_first=norm_first)

    def forward(self, X: torch.Tensor, valid_lens: torch.Tensor | None = None) -> torch.Tensor:
        """``X (N, T, d)`` -> ``(N, T, d)``; keys beyond ``valid_lens`` are padding."""
        Y = self.addnorm1.residual(X, lambda x: self.attention(x, x, x, valid_lens))
        return self.addnorm2.residual(Y, self.ffn)


class TransformerDecoderBlock(nn.Module):
    """Causal self-attention, cross-attention to the encoder, FFN (notes §6.13.2-6.13.3).

    During training the whole target sequence goes through at once, the
    causal mask hiding later positions. During decoding, ``self_cache`` and
    ``cross_cache`` keep the projected keys and values, so each step projects
    only its own token.

    Args: as :class:`TransformerEncoderBlock`.
    """

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float = 0.0, *,
                 bias: bool = False, norm_first: bool = False, attention: str = "scratch") -> None:  # fmt: skip
        super().__init__()
        self.self_attention = MultiHeadAttention(num_hiddens, num_heads, dropout=dropout, bias=bias, impl=attention)
        self.addnorm1 = AddNorm(num_hiddens, dropout, norm_first=norm_first)
        self.cross_attention = MultiHeadAttention(num_hiddens, num_heads, dropout=dropout, bias=bias, impl=attention)
        self.addnorm2 = AddNorm(num_hiddens, dropout, norm_first=norm_first)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm3 = AddNorm(num_hiddens, dropout, norm_first=norm_first)

    def forward(
        self,
        X: torch.Tensor,
        enc_outputs: torch.Tensor,
        enc_valid_lens: torch.Tensor | None = None,
        *,
        self_cache: KVCache | None = None,
        cross_cache: KVCache | None = None,
    ) -> torch.Tensor:
        """``X (N, T, d)`` attending to ``enc_outputs (N, S, d)`` -> ``(N, T, d)``."""
        X = self.addnorm1.residual(X, lambda x: self.self_attention(x, x, x, causal=True, cache=self_cache))
        X = self.addnorm2.residual(
            X, lambda x: self.cross_attention(x, enc_outputs, enc_outputs, enc_valid_lens, cache=cross_cache))
        return self.addnorm3.residual(X, self.ffn)


def scaled_embedding(embedding: nn.Embedding, X: torch.Tensor) -> torch.Tensor:
    """Token embeddings times ``sqrt(d)``, so they are not dwarfed by the positional encodings in [-1, 1]."""
    return embedding(X) * math.sqrt(embedding.embedding_dim)
