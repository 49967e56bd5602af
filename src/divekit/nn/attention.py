"""Attention scoring (notes §6.11.4 注意力分数): masks, additive and dot-product attention.

An attention layer pools ``values`` with weights that say how well each
``key`` matches a ``query``: ``f(q) = sum_i softmax(a(q, k_i)) v_i``. The
score ``a`` is either additive (a one-hidden-layer MLP, for queries and keys
of different sizes) or a scaled dot product (same sizes).

Padding is excluded with *valid lengths*: for each example (1-D) or each
query (2-D), only the first ``valid_len`` keys take part.

Every attention module here can keep its last weights for plotting: set
``record_weights`` (or use :func:`record_attention` on a whole model) and read
``attention_weights`` after a forward pass.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

MASK_VALUE = -1e6  # the book's fill value: exp(-1e6 - max) is exactly 0, so masked keys get no weight


def sequence_mask(X: torch.Tensor, valid_len: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """``X`` with every item at position ``>= valid_len`` along dim 1 set to ``value``.

    Args:
        X: a ``(N, T, ...)`` tensor.
        valid_len: ``(N,)`` lengths.
        value: the fill value. The input is not modified.
    """
    keep = torch.arange(X.shape[1], device=X.device)[None, :] < valid_len[:, None]  # (N, T)
    keep = keep.reshape(*keep.shape, *([1] * (X.dim() - 2)))  # (N, T, 1, ...) to broadcast over features
    return X.masked_fill(~keep, value)


def length_mask(valid_lens: torch.Tensor, num_queries: int, num_keys: int) -> torch.Tensor:
    """Which keys each query may see: a bool ``(N, num_queries, num_keys)`` mask.

    Args:
        valid_lens: ``(N,)`` (one length per example) or ``(N, num_queries)``
            (one per query).
    """
    lens = valid_lens[:, None] if valid_lens.dim() == 1 else valid_lens  # (N, 1) or (N, Tq)
    keys = torch.arange(num_keys, device=valid_lens.device)
    keep = keys[None, None, :] < lens[:, :, None]  # (N, 1 or Tq, Tk)
    return keep.expand(-1, num_queries, -1)


def causal_mask(num_queries: int, num_keys: int, *, device: torch.device | None = None) -> torch.Tensor:
    """Bool ``(num_queries, num_keys)``: query ``i`` sees keys up to its own position.

    The queries are the *last* ``num_queries`` positions of the ``num_keys``
    (so a decoder with ``t`` cached steps passes ``num_keys = t + num_queries``).
    """
    ones = torch.ones(num_queries, num_keys, dtype=torch.bool, device=device)
    return ones.tril(diagonal=num_keys - num_queries)


def masked_softmax(X: torch.Tensor, valid_lens: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis of ``X`` ``(N, Tq, Tk)``, ignoring keys beyond the valid lengths.

    Args:
        X: attention scores.
        valid_lens: ``None`` (no mask), ``(N,)`` or ``(N, Tq)``. A query with
            no valid key gets uniform weights, as in the book.
    """
    if valid_lens is None:
        return F.softmax(X, dim=-1)
    keep = length_mask(valid_lens, X.shape[-2], X.shape[-1])
    return F.softmax(X.masked_fill(~keep, MASK_VALUE), dim=-1)


class _Recording(nn.Module):
    """Keeps the last attention weights when ``record_weights`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.record_weights = False
        self.attention_weights: torch.Tensor | None = None

    def _keep(self, weights: torch.Tensor) -> None:
        if self.record_weights:
            self.attention_weights = weights.detach()


class _Pooling(_Recording):
    """Attention pooling of ``values`` by the masked softmax of scores; dropout on the weights."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def _pool(self, scores: torch.Tensor, values: torch.Tensor, valid_lens: torch.Tensor | None) -> torch.Tensor:
        weights = masked_softmax(scores, valid_lens)  # (N, Tq, Tk)
        self._keep(weights)
        return torch.bmm(self.dropout(weights), values)  # (N, Tq, v)


class AdditiveAttention(_Pooling):
    """Additive attention (Bahdanau et al., 2015): ``a(q, k) = w_v^T tanh(W_q q + W_k k)``.

    Args:
        key_size: width of the keys.
        query_size: width of the queries.
        num_hiddens: width of the hidden layer of the scoring MLP.
        dropout: dropout on the attention weights.
    """

    def __init__(self, key_size: int, query_size: int, num_hiddens: int, dropout: float = 0.0) -> None:
        super().__init__(dropout)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        valid_lens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``queries (N, Tq, q)``, ``keys (N, Tk, k)``, ``values (N, Tk, v)`` -> ``(N, Tq, v)``."""
        q, k = self.W_q(queries), self.W_k(keys)
        features = torch.tanh(q.unsqueeze(2) + k.unsqueeze(1))  # (N, Tq, Tk, h): every query with every key
        scores = self.w_v(features).squeeze(-1)  # (N, Tq, Tk)
        return self._pool(scores, values, valid_lens)


class DotProductAttention(_Pooling):
    """Scaled dot-product attention: ``a(q, k) = q^T k / sqrt(d)``.

    Dividing by ``sqrt(d)`` keeps the scores' variance near 1 whatever the
    width ``d`` of queries and keys, so the softmax does not saturate.

    Args:
        dropout: dropout on the attention weights.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__(dropout)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        valid_lens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``queries (N, Tq, d)``, ``keys (N, Tk, d)``, ``values (N, Tk, v)`` -> ``(N, Tq, v)``."""
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(queries.shape[-1])  # (N, Tq, Tk)
        return self._pool(scores, values, valid_lens)


def set_record_attention(model: nn.Module, on: bool) -> None:
    """Make every attention layer of ``model`` keep (or stop keeping) its last weights."""
    for module in model.modules():
        if isinstance(module, _Recording):
            module.record_weights = on
            if not on:
                module.attention_weights = None


@contextlib.contextmanager
def record_attention(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, attention layers of ``model`` keep their last weights.

    Multi-head layers then take the readable scratch path, since the fused
    kernel never forms the weights.
    """
    set_record_attention(model, True)
    try:
        yield model
    finally:
        set_record_attention(model, False)
