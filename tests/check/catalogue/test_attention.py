"""masked_softmax, additive and dot-product attention, positional encoding: the book's code and the slips."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from divekit.nn import attention
from divekit.nn.transformer import PositionalEncoding as ReferenceEncoding
from tests.check.support import Case, case_id, verify


def sequence_mask(X, valid_len, value=0):
    maxlen = X.size(1)
    mask = torch.arange((maxlen), dtype=torch.float32, device=X.device)[None, :] < valid_len[:, None]
    X[~mask] = value
    return X


def masked_softmax_with(*, value=-1e6, after=False, tile=False, inclusive=False):
    """The book's masked_softmax with one thing changed."""

    def masked_softmax(X, valid_lens):
        if valid_lens is None:
            return F.softmax(X, dim=-1)
        shape = X.shape
        if valid_lens.dim() == 1:
            valid_lens = valid_lens.repeat(shape[1]) if tile else torch.repeat_interleave(valid_lens, shape[1])
        else:
            valid_lens = valid_lens.reshape(-1)
        if after:
            weights = F.softmax(X, dim=-1).reshape(-1, shape[-1])
            return sequence_mask(weights, valid_lens, value=0).reshape(shape)
        lens = valid_lens + 1 if inclusive else valid_lens
        X = sequence_mask(X.reshape(-1, shape[-1]), lens, value=value)
        return F.softmax(X.reshape(shape), dim=-1)

    return masked_softmax


masked_softmax = masked_softmax_with()
masked_softmax.__name__ = "masked_softmax"
mask_with_zero = masked_softmax_with(value=0)
mask_with_zero.__name__ = "mask_with_zero"
mask_after_softmax = masked_softmax_with(after=True)
mask_after_softmax.__name__ = "mask_after_softmax"
mask_with_minus_inf = masked_softmax_with(value=float("-inf"))
mask_with_minus_inf.__name__ = "mask_with_minus_inf"
mask_lengths_tiled = masked_softmax_with(tile=True)
mask_lengths_tiled.__name__ = "mask_lengths_tiled"
mask_one_too_many = masked_softmax_with(inclusive=True)
mask_one_too_many.__name__ = "mask_one_too_many"


class AdditiveAttention(nn.Module):
    def __init__(self, key_size, query_size, num_hiddens, dropout, **kwargs):
        super().__init__(**kwargs)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def scores(self, queries, keys):
        features = self.W_q(queries).unsqueeze(2) + self.W_k(keys).unsqueeze(1)
        return self.w_v(torch.tanh(features)).squeeze(-1)

    def forward(self, queries, keys, values, valid_lens):
        self.attention_weights = masked_softmax(self.scores(queries, keys), valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values)


class AdditiveNoMask(AdditiveAttention):
    def forward(self, queries, keys, values, valid_lens):
        return torch.bmm(F.softmax(self.scores(queries, keys), dim=-1), values)


class AdditiveReLU(AdditiveAttention):
    def scores(self, queries, keys):
        return self.w_v(torch.relu(self.W_q(queries).unsqueeze(2) + self.W_k(keys).unsqueeze(1))).squeeze(-1)


class AdditiveSwapped(AdditiveAttention):
    def scores(self, queries, keys):
        return self.w_v(torch.tanh(self.W_k(queries).unsqueeze(2) + self.W_q(keys).unsqueeze(1))).squeeze(-1)


class AdditiveBiased(AdditiveAttention):
    def __init__(self, key_size, query_size, num_hiddens, dropout):
        super().__init__(key_size, query_size, num_hiddens, dropout)
        self.W_k = nn.Linear(key_size, num_hiddens)
        self.W_q = nn.Linear(query_size, num_hiddens)


class DotProductAttention(nn.Module):
    def __init__(self, dropout, **kwargs):
        super().__init__(**kwargs)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        d = queries.shape[-1]
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values)


class DotUnscaled(DotProductAttention):
    def forward(self, queries, keys, values, valid_lens=None):
        return torch.bmm(masked_softmax(torch.bmm(queries, keys.transpose(1, 2)), valid_lens), values)


class DotByD(DotProductAttention):
    def forward(self, queries, keys, values, valid_lens=None):
        scores = torch.bmm(queries, keys.transpose(1, 2)) / queries.shape[-1]
        return torch.bmm(masked_softmax(scores, valid_lens), values)


class DotOverQueries(DotProductAttention):
    def forward(self, queries, keys, values, valid_lens=None):
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(queries.shape[-1])
        return torch.bmm(F.softmax(scores, dim=1), values)


class DotNoMask(DotProductAttention):
    def forward(self, queries, keys, values, valid_lens=None):
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(queries.shape[-1])
        return torch.bmm(F.softmax(scores, dim=-1), values)


def encoding_table(num_hiddens, max_len, *, exponent=lambda i, d: i / d, swap=False, multiply=False):
    """The book's P, or one miswritten."""
    P = torch.zeros((1, max_len, num_hiddens))
    pos = torch.arange(max_len, dtype=torch.float32).reshape(-1, 1)
    power = torch.pow(10000, exponent(torch.arange(0, num_hiddens, 2, dtype=torch.float32), num_hiddens))
    X = pos * power if multiply else pos / power
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    P[:, :, 0::2] = first(X)
    P[:, :, 1::2] = second(X)
    return P


class PositionalEncoding(nn.Module):
    def __init__(self, num_hiddens, dropout, max_len=1000):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.P = self.table(num_hiddens, max_len)

    def table(self, num_hiddens, max_len):
        return encoding_table(num_hiddens, max_len)

    def forward(self, X):
        return self.dropout(X + self.P[:, :X.shape[1], :].to(X.device))


class EncodingSwapped(PositionalEncoding):
    def table(self, num_hiddens, max_len):
        return encoding_table(num_hiddens, max_len, swap=True)


class EncodingExponent(PositionalEncoding):
    def table(self, num_hiddens, max_len):
        return encoding_table(num_hiddens, max_len, exponent=lambda i, d: i / 2 / d)


class EncodingMultiplied(PositionalEncoding):
    def table(self, num_hiddens, max_len):
        return encoding_table(num_hiddens, max_len, multiply=True)


class EncodingNotAdded(PositionalEncoding):
    def forward(self, X):
        return self.P[:, :X.shape[1], :].expand(X.shape[0], -1, -1)


CASES = [
    Case("masked-softmax", attention.masked_softmax),
    Case("masked-softmax", masked_softmax),
    Case("masked-softmax", mask_with_zero, "set to 0 instead of a large negative", "fills masked scores with 0"),
    Case("masked-softmax", mask_after_softmax, "after the softmax", "masks the weights, not the scores"),
    Case("masked-softmax", mask_with_minus_inf, "gets NaN", "fills with -inf"),
    Case("masked-softmax", mask_lengths_tiled, "repeat_interleave", "valid_lens.repeat instead of repeat_interleave"),
    Case("masked-softmax", mask_one_too_many, "one key too many", "keeps position valid_len too"),
    Case("additive-attention", attention.AdditiveAttention),
    Case("additive-attention", AdditiveAttention),
    Case("additive-attention", AdditiveNoMask, "valid_lens is ignored", "plain softmax"),
    Case("additive-attention", AdditiveReLU, "through tanh", "ReLU instead of tanh"),
    Case("additive-attention", AdditiveSwapped, "W_q projects the queries", "W_k on queries, W_q on keys"),
    Case("additive-attention", AdditiveBiased, "no bias", "projections with biases"),
    Case("dot-product-attention", attention.DotProductAttention),
    Case("dot-product-attention", DotProductAttention),
    Case("dot-product-attention", DotUnscaled, "not scaled", "no 1/sqrt(d)"),
    Case("dot-product-attention", DotByD, "divided by d", "divides by d"),
    Case("dot-product-attention", DotOverQueries, "over the queries", "softmax over dim 1"),
    Case("dot-product-attention", DotNoMask, "valid_lens is ignored", "plain softmax"),
    Case("positional-encoding", ReferenceEncoding),
    Case("positional-encoding", PositionalEncoding),
    Case("positional-encoding", EncodingSwapped, "sin and cos are swapped", "cos on even columns"),
    Case("positional-encoding", EncodingExponent, "exponent is 2i/d", "10000^(i/d)"),
    Case("positional-encoding", EncodingMultiplied, "not multiplied", "pos * 10000^(2i/d)"),
    Case("positional-encoding", EncodingNotAdded, "not added to X", "returns P alone"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)
