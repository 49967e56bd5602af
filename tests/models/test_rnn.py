"""The RNNModel wrapper and the registered recurrent language models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from divekit.errors import ConfigError
from divekit.models import create_model, get_model_entry, list_models
from divekit.models.rnn import RNNModel
from divekit.nn import recurrent

NAMES = ("rnn-lm", "gru-lm", "lstm-lm")
V, N, T = 11, 3, 7


def test_registered_as_language_models_with_the_books_recipe():
    assert set(NAMES) <= set(list_models("language-model"))
    recipe = get_model_entry("gru-lm").recipe
    assert recipe["optim.clip_grad"] == 1.0 and recipe["optim.lr"] == 1.0 and recipe["data.batch_size"] == 32


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scratch", [False, True])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, True)])
def test_forward_contract_and_state(name, scratch, layers, bidirectional):
    model = create_model(name, vocab_size=V, num_hiddens=8, num_layers=layers, bidirectional=bidirectional,
                         scratch=scratch)
    X = torch.randint(0, V, (N, T))
    logits, state = model(X)
    assert logits.shape == (N, T, V)
    directions = 2 if bidirectional else 1
    assert model.linear.in_features == 8 * directions  # the output layer doubles for two directions
    zeros = model.begin_state(N)
    parts = state if isinstance(state, tuple) else (state,)
    assert len(parts) == (2 if name == "lstm-lm" else 1)
    for part, zero in zip(parts, zeros if isinstance(zeros, tuple) else (zeros,)):
        assert part.shape == zero.shape == (layers * directions, N, 8)
    torch.testing.assert_close(model(X, zeros)[0], logits)  # None means the zero state


@pytest.mark.parametrize("name", NAMES)
def test_scratch_and_concise_models_share_weights_and_outputs(name):
    torch.manual_seed(0)
    concise = create_model(name, vocab_size=V, num_hiddens=8, num_layers=2).double()
    scratch = create_model(name, vocab_size=V, num_hiddens=8, num_layers=2, scratch=True).double()
    assert isinstance(scratch.rnn, recurrent._Recurrent) and isinstance(concise.rnn, nn.RNNBase)
    scratch.load_state_dict(concise.state_dict())
    X = torch.randint(0, V, (N, T))
    torch.testing.assert_close(scratch(X)[0], concise(X)[0], rtol=1e-12, atol=1e-12)


def test_one_hot_equals_an_embedding_with_identity_weights():
    layer = nn.GRU(V, 5)
    model = RNNModel(layer, V)
    X = torch.randint(0, V, (N, T))
    assert torch.equal(model.encode(X), torch.eye(V)[X.T])  # (T, N, V), time-major
    embedded = create_model("gru-lm", vocab_size=V, num_hiddens=5, embed_size=4)
    assert embedded.rnn.input_size == 4 and embedded(X)[0].shape == (N, T, V)


def test_state_carries_the_sequence_over():
    model = create_model("lstm-lm", vocab_size=V, num_hiddens=6)
    X = torch.randint(0, V, (N, T))
    whole, _ = model(X)
    first, state = model(X[:, :3])
    rest, _ = model(X[:, 3:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole)


def test_wrapper_refuses_mismatched_layers_and_builders_refuse_bad_sizes():
    with pytest.raises(ValueError, match="reads 4 features"):
        RNNModel(nn.RNN(4, 3), V)
    with pytest.raises(ValueError, match="time-major"):
        RNNModel(nn.RNN(V, 3, batch_first=True), V)
    with pytest.raises(ConfigError, match="num_hiddens must be at least 1"):
        create_model("rnn-lm", num_hiddens=0)
    with pytest.raises(ConfigError, match="dropout"):
        create_model("gru-lm", dropout=1.5)


@pytest.mark.parametrize("name", NAMES)
def test_fast_option_runs_the_scratch_layers_fast_path_with_the_same_outputs(name):
    torch.manual_seed(0)
    readable = create_model(name, vocab_size=V, num_hiddens=8, num_layers=2, scratch=True).double()
    fast = create_model(name, vocab_size=V, num_hiddens=8, num_layers=2, scratch=True, fast=True).double()
    assert fast.rnn.fast and not readable.rnn.fast
    fast.load_state_dict(readable.state_dict())
    X = torch.randint(0, V, (N, T))
    torch.testing.assert_close(fast(X), readable(X), rtol=1e-12, atol=1e-12)  # logits and state


def test_fast_option_needs_the_scratch_layers():
    with pytest.raises(ConfigError, match="scratch=True"):
        create_model("gru-lm", fast=True)
