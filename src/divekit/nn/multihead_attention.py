"""Multi-head attention (notes §6.12.3 Multi-head Self-attention), with a key-value cache.

Each of ``h`` heads projects queries, keys and values to ``num_hiddens / h``
dimensions, attends with scaled dot products, and the heads' outputs are
concatenated and projected once more by ``W_o``. Self-attention (§6.12) is
the case where queries, keys and values are the same sequence.

Two paths compute the same thing, chosen by ``impl``:

- ``"scratch"``: the readable version, scores -> masked softmax -> weights @ values;
- ``"sdpa"``: ``torch.nn.functional.scaled_dot_product_attention``, a fused kernel
  (flash or memory-efficient attention on a GPU) that never forms the weights.

Tensors are batch-first, ``(N, T, num_hiddens)``, as in ``nn.MultiheadAttention(batch_first=True)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from divekit.nn.attention import MASK_VALUE, _Recording, causal_mask, length_mask

IMPLEMENTATIONS = ("scratch", "sdpa")


class KVCache:
    """The projected keys and values an attention layer has seen, per head, ``(N, h, T, d)``.

    A decoder keeps one per self-attention layer, extended by each new step, so
    earlier steps are never projected again. A ``static`` cache (for
    cross-attention to the encoder's outputs) is filled once and then reused.
    """

    def __init__(self, *, static: bool = False) -> None:
        self.static = static
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]

    @property
    def filled(self) -> bool:
        return self.keys is not None

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new steps (dim 2) and return all keys and values so far."""
        if self.keys is None:
            self.keys, self.values = keys, values
        else:
            self.keys = torch.cat([self.keys, keys], dim=2)  # (N, h, T_old + T_new, d)
            self.values = torch.cat([self.values, values], dim=2)
        return self.keys, self.values

    def select(self, index: torch.Tensor) -> KVCache:
        """A cache holding only the batch entries ``index`` (in that order), e.g. surviving beams."""
        out = KVCache(static=self.static)
        if self.keys is not None:
            out.keys, out.values = self.keys.index_select(0, index), self.values.index_select(0, index)
        return out


class MultiHeadAttention(_Recording):
    """Multi-head scaled dot-product attention, written out.

    Args:
        num_hiddens: width of the projected queries, keys and values (all heads together) and of the output.
        num_heads: number of heads; must divide ``num_hiddens``.
        key_size, query_size, value_size: widths of the inputs (default ``num_hiddens``).
        dropout: dropout on the attention weights.
        bias: biases in the four projections (the book: none; ``nn.MultiheadAttention``: yes).
        impl: ``"scratch"`` or ``"sdpa"`` (see the module docstring).
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        *,
        key_size: int | None = None,
        query_size: int | None = None,
        value_size: int | None = None,
        dropout: float = 0.0,
        bias: bool = False,
        impl: str = "scratch",
    ) -> None:
        super().__init__()
        if num_hiddens % num_heads:
            raise ValueError(f"num_hiddens ({num_hiddens}) must be divisible by num_heads ({num_heads})")
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"unknown attention implementation {impl!r}; use one of {IMPLEMENTATIONS}")
        self.num_heads = num_heads
        self.impl = impl
        self.W_q = nn.Linear(query_size or num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size or num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size or num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def _split_heads(self, X: torch.Tensor) -> torch.Tensor:
        N, T, _ = X.shape
        X = X.reshape(N, T, self.num_heads, -1)  # (N, T, h, d): d = num_hiddens / h
        return X.transpose(1, 2)  # (N, h, T, d)

    def _merge_heads(self, X: torch.Tensor) -> torch.Tensor:
        N, _, T, _ = X.shape
        X = X.transpose(1, 2)  # (N, T, h, d)
        return X.reshape(N, T, -1)  # (N, T, h * d)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        valid_lens: torch.Tensor | None = None,
        *,
        causal: bool = False,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Attend ``queries (N, Tq, q)`` over ``keys (N, Tk, k)`` / ``values (N, Tk, v)`` -> ``(N, Tq, num_hiddens)``.

        Args:
            valid_lens: ``(N,)`` or ``(N, Tq)``: keys beyond them are ignored.
            causal: each query sees only keys at or before its own position
                (the queries being the last ``Tq`` positions of the keys).
            cache: projected keys/values of earlier steps. A growing cache gets
                this call's keys appended; a filled static cache is used
                instead of projecting ``keys`` and ``values`` again.
        """
        Q = self._split_heads(self.W_q(queries))  # (N, h, Tq, d)
        if cache is not None and cache.static and cache.filled:
            K, V = cache.keys, cache.values
        else:
            K = self._split_heads(self.W_k(keys))  # (N, h, Tk_new, d)
            V = self._split_heads(self.W_v(values))
            if cache is not None:
                K, V = cache.extend(K, V)  # (N, h, Tk, d): every step so far
        keep = self._mask(valid_lens, causal, Q.shape[2], K.shape[2], Q.device)
        if self.impl == "sdpa" and not self.record_weights:
            out = self._fused(Q, K, V, keep, causal)
        else:
            out = self._scratch(Q, K, V, keep)
        return self.W_o(self._merge_heads(out))

    @staticmethod
    def _mask(valid_lens: torch.Tensor | None, causal: bool, Tq: int, Tk: int,
              device: torch.device) -> torch.Tensor | None:  # fmt: skip
        """Bool ``(N or 1, 1, Tq, Tk)``: True where a query may see a key; ``None`` if all may."""
        keep = None
        if valid_lens is not None:
            keep = length_mask(valid_lens, Tq, Tk).unsqueeze(1)  # (N, 1, Tq, Tk): same for every head
        if causal and Tq > 1:  # a single query is the newest position: it sees every key
            tril = causal_mask(Tq, Tk, device=device)  # (Tq, Tk)
            keep = tril if keep is None else keep & tril
        return keep

    def _scratch(self, Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])  # (N, h, Tq, Tk)
        if keep is not None:
            scores = scores.masked_fill(~keep, MASK_VALUE)
        weights = F.softmax(scores, dim=-1)
        self._keep(weights)
        return self.dropout(weights) @ V  # (N, h, Tq, d)

    def _fused(self, Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, keep: torch.Tensor | None,
               causal: bool) -> torch.Tensor:  # fmt: skip
        p = self.dropout.p if self.training else 0.0
        if causal and keep is not None and keep.dim() == 2 and Q.shape[2] == K.shape[2]:
            return F.scaled_dot_product_attention(Q, K, V, dropout_p=p, is_causal=True)  # fast causal kernels
        return F.scaled_dot_product_attention(Q, K, V, attn_mask=keep, dropout_p=p)


def load_torch_weights(scratch: MultiHeadAttention, reference: nn.MultiheadAttention) -> MultiHeadAttention:
    """Copy the weights of a ``nn.MultiheadAttention`` into ``scratch`` (shapes must agree).

    PyTorch packs the query, key and value projections into one
    ``in_proj_weight`` (3 * E, E) when their input widths are equal, and keeps
    ``q/k/v_proj_weight`` apart otherwise; ``out_proj`` is ``W_o``.
    """
    with torch.no_grad():
        if reference.in_proj_weight is not None:
            weights = reference.in_proj_weight.chunk(3)
        else:
            weights = (reference.q_proj_weight, reference.k_proj_weight, reference.v_proj_weight)
        biases = reference.in_proj_bias.chunk(3) if reference.in_proj_bias is not None else (None,) * 3
        for layer, weight, bias in zip((scratch.W_q, scratch.W_k, scratch.W_v), weights, biases):
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias)
        scratch.W_o.weight.copy_(reference.out_proj.weight)
        if reference.out_proj.bias is not None:
            scratch.W_o.bias.copy_(reference.out_proj.bias)
    return scratch
