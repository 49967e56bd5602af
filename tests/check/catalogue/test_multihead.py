"""MultiHeadAttention: both of the book's signatures pass; the head bookkeeping slips are named."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from divekit.nn import attention
from divekit.nn.multihead_attention import MultiHeadAttention as Reference
from tests.check.support import Case, case_id, verify


class ReferenceWithBookSignature(Reference):
    def __init__(self, key_size, query_size, value_size, num_hiddens, num_heads, dropout, bias=False):
        super().__init__(num_hiddens, num_heads, key_size=key_size, query_size=query_size, value_size=value_size,
                         dropout=dropout, bias=bias)  # fmt: skip


def transpose_qkv(X, num_heads):
    X = X.reshape(X.shape[0], X.shape[1], num_heads, -1)
    X = X.permute(0, 2, 1, 3)
    return X.reshape(-1, X.shape[2], X.shape[3])


def transpose_output(X, num_heads):
    X = X.reshape(-1, num_heads, X.shape[1], X.shape[2])
    X = X.permute(0, 2, 1, 3)
    return X.reshape(X.shape[0], X.shape[1], -1)


class MultiHeadAttention(nn.Module):
    """The book's (Chinese edition) multi-head attention."""

    def __init__(self, key_size, query_size, value_size, num_hiddens, num_heads, dropout, bias=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.dropout = nn.Dropout(dropout)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def split(self, X):
        return transpose_qkv(X, self.num_heads)

    def lengths(self, valid_lens):
        return torch.repeat_interleave(valid_lens, repeats=self.num_heads, dim=0)

    def attend(self, queries, keys, values, valid_lens):
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(queries.shape[-1])
        return torch.bmm(self.dropout(attention.masked_softmax(scores, valid_lens)), values)

    def forward(self, queries, keys, values, valid_lens):
        queries, keys, values = self.split(self.W_q(queries)), self.split(self.W_k(keys)), self.split(self.W_v(values))
        if valid_lens is not None:
            valid_lens = self.lengths(valid_lens)
        output = self.attend(queries, keys, values, valid_lens)
        return self.W_o(transpose_output(output, self.num_heads))


class LazyMultiHeadAttention(MultiHeadAttention):
    """The later edition's signature, with nn.LazyLinear projections."""

    def __init__(self, num_hiddens, num_heads, dropout, bias=False):
        nn.Module.__init__(self)
        self.num_heads = num_heads
        self.dropout = nn.Dropout(dropout)
        self.W_q, self.W_k, self.W_v = (nn.LazyLinear(num_hiddens, bias=bias) for _ in range(3))
        self.W_o = nn.LazyLinear(num_hiddens, bias=bias)


class TiledLengths(MultiHeadAttention):
    def lengths(self, valid_lens):
        return valid_lens.repeat(self.num_heads, *[1] * (valid_lens.dim() - 1))


class StraightReshape(MultiHeadAttention):
    def split(self, X):
        return X.reshape(X.shape[0] * self.num_heads, X.shape[1], -1)

    def forward(self, queries, keys, values, valid_lens):
        N, T = queries.shape[:2]
        queries, keys, values = self.split(self.W_q(queries)), self.split(self.W_k(keys)), self.split(self.W_v(values))
        if valid_lens is not None:
            valid_lens = self.lengths(valid_lens)
        return self.W_o(self.attend(queries, keys, values, valid_lens).reshape(N, T, -1))


class NoOutputProjection(MultiHeadAttention):
    def forward(self, queries, keys, values, valid_lens):
        queries, keys, values = self.split(self.W_q(queries)), self.split(self.W_k(keys)), self.split(self.W_v(values))
        if valid_lens is not None:
            valid_lens = self.lengths(valid_lens)
        return transpose_output(self.attend(queries, keys, values, valid_lens), self.num_heads)


class ScaledByAllHeads(MultiHeadAttention):
    def attend(self, queries, keys, values, valid_lens):
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(queries.shape[-1] * self.num_heads)
        return torch.bmm(attention.masked_softmax(scores, valid_lens), values)


CASES = [
    Case("multi-head-attention", ReferenceWithBookSignature),
    Case("multi-head-attention", MultiHeadAttention),
    Case("multi-head-attention", LazyMultiHeadAttention),
    Case("multi-head-attention", TiledLengths, "repeated for each head in a row", "valid_lens.repeat across heads"),
    Case("multi-head-attention", StraightReshape, "straight reshape", "splits heads without the permute"),
    Case("multi-head-attention", NoOutputProjection, "through W_o", "no W_o"),
    Case("multi-head-attention", ScaledByAllHeads, "its own width", "scales by sqrt(num_hiddens)"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)
