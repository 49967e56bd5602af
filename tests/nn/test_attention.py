import pytest
import torch

from divekit.nn.attention import (
    AdditiveAttention,
    DotProductAttention,
    causal_mask,
    masked_softmax,
    record_attention,
    sequence_mask,
)


def test_sequence_mask_zeroes_positions_beyond_the_valid_length():
    X = torch.tensor([[1.0, 2, 3], [4, 5, 6]])
    assert sequence_mask(X, torch.tensor([1, 2])).tolist() == [[1, 0, 0], [4, 5, 0]]
    assert X.tolist() == [[1, 2, 3], [4, 5, 6]]  # the input is not modified


def test_sequence_mask_broadcasts_over_trailing_feature_dims():
    out = sequence_mask(torch.ones(2, 3, 4), torch.tensor([1, 2]), value=-1)
    assert out[0, 1:].eq(-1).all() and out[0, 0].eq(1).all()
    assert out[1, :2].eq(1).all() and out[1, 2].eq(-1).all()


def test_masked_softmax_with_one_length_per_example():
    weights = masked_softmax(torch.rand(2, 2, 4), torch.tensor([2, 3]))
    assert weights[0, :, 2:].eq(0).all() and weights[1, :, 3:].eq(0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2))


def test_masked_softmax_with_one_length_per_query():
    weights = masked_softmax(torch.rand(2, 2, 4), torch.tensor([[1, 3], [2, 4]]))
    assert weights[0, 0, 1:].eq(0).all() and weights[0, 0, 0] == 1
    assert weights[0, 1, 3] == 0 and weights[1, 0, 2:].eq(0).all() and (weights[1, 1] > 0).all()


def test_masked_softmax_without_valid_key_is_uniform_as_in_the_book():
    weights = masked_softmax(torch.randn(1, 1, 4), torch.tensor([0]))
    torch.testing.assert_close(weights, torch.full((1, 1, 4), 0.25))


def test_causal_mask_places_queries_at_the_end_of_the_keys():
    assert causal_mask(3, 3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(1, 4).tolist() == [[True, True, True, True]]  # one new step after three cached ones
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


def _book_keys_values():
    keys = torch.ones(2, 10, 2)
    values = torch.arange(40, dtype=torch.float32).reshape(1, 10, 4).repeat(2, 1, 1)
    return keys, values, torch.tensor([2, 6])


EXPECTED = [[[2.0, 3.0, 4.0, 5.0]], [[10.0, 11.0, 12.0, 13.0]]]


def test_additive_attention_book_values():
    # Equal keys get equal scores, so each output is the mean of the first valid_len values.
    keys, values, valid_lens = _book_keys_values()
    attention = AdditiveAttention(key_size=2, query_size=20, num_hiddens=8, dropout=0.1).eval()
    out = attention(torch.normal(0, 1, (2, 1, 20)), keys, values, valid_lens)
    torch.testing.assert_close(out, torch.tensor(EXPECTED))


def test_dot_product_attention_book_values():
    keys, values, valid_lens = _book_keys_values()
    attention = DotProductAttention(dropout=0.5).eval()
    out = attention(torch.normal(0, 1, (2, 1, 2)), keys, values, valid_lens)
    torch.testing.assert_close(out, torch.tensor(EXPECTED))


def test_dot_product_scores_are_scaled_by_sqrt_d():
    q, k = torch.tensor([[[1.0, 1, 1, 1]]]), torch.tensor([[[1.0, 1, 1, 1], [0, 0, 0, 0]]])
    attention = DotProductAttention()
    with record_attention(attention):
        attention(q, k, torch.rand(1, 2, 3))
        weights = attention.attention_weights
    # scores 4 / sqrt(4) = 2 and 0: softmax gives e^2 / (e^2 + 1)
    torch.testing.assert_close(weights[0, 0, 0], torch.tensor(1 / (1 + torch.e**-2)))


def test_weights_are_recorded_only_inside_record_attention():
    keys, values, valid_lens = _book_keys_values()
    attention = DotProductAttention()
    attention(torch.rand(2, 1, 2), keys, values, valid_lens)
    assert attention.attention_weights is None
    with record_attention(attention):
        attention(torch.rand(2, 1, 2), keys, values, valid_lens)
        assert attention.attention_weights.shape == (2, 1, 10)
    assert attention.attention_weights is None and not attention.record_weights


@pytest.mark.parametrize("module", [AdditiveAttention(3, 5, 4, dropout=0.5), DotProductAttention(dropout=0.5)])
def test_dropout_acts_on_weights_only_in_training(module):
    q = torch.rand(2, 3, 5) if isinstance(module, AdditiveAttention) else torch.rand(2, 3, 3)
    k, v = torch.rand(2, 4, 3), torch.rand(2, 4, 6)
    module.eval()
    torch.testing.assert_close(module(q, k, v), module(q, k, v))
    module.train()
    assert not torch.allclose(module(q, k, v), module(q, k, v))
