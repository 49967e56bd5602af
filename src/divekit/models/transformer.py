"""The Transformer (notes §6.13; Vaswani et al., 2017), as an encoder-decoder for translation.

The encoder stacks self-attention blocks over the scaled source embeddings
plus positional encodings. The decoder stacks blocks of causal
self-attention and cross-attention to the encoder's outputs, and maps the
result to target-vocabulary logits. While decoding step by step it keeps a
key-value cache per layer (:class:`~divekit.nn.multihead_attention.KVCache`),
so each new token costs one projection per layer instead of re-running the
whole prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from divekit.models.registry import register_model
from divekit.models.seq2seq import BOOK_RECIPE
from divekit.nn.encoder_decoder import Decoder, Encoder, EncoderDecoder
from divekit.nn.multihead_attention import IMPLEMENTATIONS, KVCache
from divekit.nn.transformer import PositionalEncoding, TransformerDecoderBlock, TransformerEncoderBlock, scaled_embedding


@dataclass
class TransformerDecoderState:
    """What the decoder needs between steps.

    ``self_caches``/``cross_caches`` (one per layer) are ``None`` when the
    whole target sequence is fed at once (training, or decoding by full
    recomputation); ``offset`` is the position of the next token fed.
    """

    enc_outputs: torch.Tensor
    enc_valid_lens: torch.Tensor | None
    self_caches: list[KVCache] | None = None
    cross_caches: list[KVCache] | None = None
    offset: int = 0


def _stack(block: type[nn.Module], vocab_size: int, num_hiddens: int, ffn_num_hiddens: int, num_heads: int,
           num_layers: int, dropout: float, *, bias: bool, norm_first: bool, attention: str,
           max_len: int) -> tuple[nn.Embedding, PositionalEncoding, nn.ModuleList, nn.Module]:  # fmt: skip
    """Embedding, positional encoding, ``num_layers`` blocks, and the final norm pre-norm stacks need."""
    blocks = nn.ModuleList(
        block(num_hiddens, ffn_num_hiddens, num_heads, dropout, bias=bias, norm_first=norm_first, attention=attention)
        for _ in range(num_layers)
    )
    final_norm = nn.LayerNorm(num_hiddens) if norm_first else nn.Identity()
    return nn.Embedding(vocab_size, num_hiddens), PositionalEncoding(num_hiddens, dropout, max_len), blocks, final_norm


class TransformerEncoder(Encoder):
    """Embedding * sqrt(d) + positional encoding, then ``num_layers`` encoder blocks.

    Args:
        vocab_size: source vocabulary size.
        num_hiddens: model width ``d``.
        ffn_num_hiddens: hidden width of each FFN.
        num_heads: attention heads.
        num_layers: encoder blocks.
        dropout: dropout everywhere.
        bias: biases in the attention projections.
        norm_first: pre-norm blocks (and a final layer norm) instead of post-norm.
        attention: ``"scratch"`` or ``"sdpa"``.
        max_len: longest source supported.
    """

    def __init__(self, vocab_size: int, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, num_layers: int,
                 dropout: float = 0.0, *, bias: bool = False, norm_first: bool = False, attention: str = "scratch",
                 max_len: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.embedding, self.pos_encoding, self.blks, self.final_norm = _stack(
            TransformerEncoderBlock, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout,
            bias=bias, norm_first=norm_first, attention=attention, max_len=max_len)  # fmt: skip

    def forward(self, X: torch.Tensor, valid_lens: torch.Tensor | None = None) -> torch.Tensor:
        """``X (N, S)`` -> ``(N, S, d)``."""
        H = self.pos_encoding(scaled_embedding(self.embedding, X))
        for blk in self.blks:
            H = blk(H, valid_lens)
        return self.final_norm(H)

    def self_attention_weights(self) -> list[torch.Tensor]:
        return [blk.attention.attention_weights for blk in self.blks if blk.attention.attention_weights is not None]


class TransformerDecoder(Decoder):
    """Embedding * sqrt(d) + positional encoding, ``num_layers`` decoder blocks, a linear layer to logits.

    Args: as :class:`TransformerEncoder`, with the target vocabulary size.
    """

    def __init__(self, vocab_size: int, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, num_layers: int,
                 dropout: float = 0.0, *, bias: bool = False, norm_first: bool = False, attention: str = "scratch",
                 max_len: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.embedding, self.pos_encoding, self.blks, self.final_norm = _stack(
            TransformerDecoderBlock, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout,
            bias=bias, norm_first=norm_first, attention=attention, max_len=max_len)  # fmt: skip
        self.dense = nn.Linear(num_hiddens, vocab_size)

    @property
    def max_len(self) -> int:
        return self.pos_encoding.max_len

    def init_state(self, enc_outputs: torch.Tensor, enc_valid_lens: torch.Tensor | None = None, *,
                   use_cache: bool = True) -> TransformerDecoderState:  # fmt: skip
        if not use_cache:
            return TransformerDecoderState(enc_outputs, enc_valid_lens)
        layers = len(self.blks)
        return TransformerDecoderState(enc_outputs, enc_valid_lens, [KVCache() for _ in range(layers)],
                                       [KVCache(static=True) for _ in range(layers)])  # fmt: skip

    def forward(self, X: torch.Tensor, state: TransformerDecoderState) -> tuple[torch.Tensor, TransformerDecoderState]:
        """``X (N, T)``: the next ``T`` target tokens (all of them without a cache) -> logits ``(N, T, V)``."""
        H = self.pos_encoding(scaled_embedding(self.embedding, X), offset=state.offset)
        caching = state.self_caches is not None
        for i, blk in enumerate(self.blks):
            H = blk(H, state.enc_outputs, state.enc_valid_lens,
                    self_cache=state.self_caches[i] if caching else None,
                    cross_cache=state.cross_caches[i] if caching else None)  # fmt: skip
        if caching:
            state.offset += X.shape[1]
        return self.dense(self.final_norm(H)), state

    def reorder_state(self, state: TransformerDecoderState, index: torch.Tensor) -> TransformerDecoderState:
        lens = state.enc_valid_lens.index_select(0, index) if state.enc_valid_lens is not None else None
        caches = state.self_caches is not None
        return TransformerDecoderState(
            state.enc_outputs.index_select(0, index), lens,
            [c.select(index) for c in state.self_caches] if caches else None,
            [c.select(index) for c in state.cross_caches] if caches else None,
            state.offset,
        )  # fmt: skip

    def cross_attention_weights(self) -> list[torch.Tensor]:
        weights = [blk.cross_attention.attention_weights for blk in self.blks]
        return [w for w in weights if w is not None]


@register_model("transformer", task="seq2seq", recipe={**BOOK_RECIPE, "train.epochs": 200})
def transformer(*, src_vocab_size: int, tgt_vocab_size: int, num_hiddens: int = 32, ffn_num_hiddens: int = 64,
                num_heads: int = 4, num_layers: int = 2, dropout: float = 0.1, bias: bool = False,
                norm_first: bool = False, attention: str = "scratch", max_len: int = 1000) -> EncoderDecoder:  # fmt: skip
    """Transformer encoder-decoder: multi-head self- and cross-attention, post-norm (notes §6.13)."""
    if attention not in IMPLEMENTATIONS:
        raise ValueError(f"attention={attention!r}: use one of {', '.join(IMPLEMENTATIONS)}")
    if num_hiddens % num_heads:
        raise ValueError(f"num_hiddens={num_hiddens} must be divisible by num_heads={num_heads}")
    options = dict(bias=bias, norm_first=norm_first, attention=attention, max_len=max_len)
    return EncoderDecoder(
        TransformerEncoder(src_vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout, **options),
        TransformerDecoder(tgt_vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout, **options),
    )
