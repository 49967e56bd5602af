"""Every seq2seq model: the forward contract, step-by-step decoding, caches, options."""

import pytest
import torch

from divekit.errors import ConfigError
from divekit.models import create_model, list_models
from divekit.nn.attention import record_attention
from divekit.inference.decoding import greedy_decode

SEQ2SEQ = list_models("seq2seq")
SRC_V, TGT_V = 13, 11


def _model(name: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, src_vocab_size=SRC_V, tgt_vocab_size=TGT_V, **options).double().eval()


def _batch():
    gen = torch.Generator().manual_seed(1)
    X = torch.randint(0, SRC_V, (3, 6), generator=gen)
    Y = torch.randint(0, TGT_V, (3, 5), generator=gen)
    return X, Y, torch.tensor([6, 2, 4])


def test_the_three_translation_models_are_registered():
    assert set(SEQ2SEQ) >= {"seq2seq", "seq2seq-attention", "transformer"}


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_forward_contract_and_gradients(name):
    model = _model(name).train()
    X, Y, lens = _batch()
    logits = model(X, Y, lens)
    assert logits.shape == (3, 5, TGT_V)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_feeding_one_token_at_a_time_equals_the_teacher_forced_pass(name):
    model = _model(name)
    X, Y, lens = _batch()
    full = model(X, Y, lens)
    state = model.decoder.init_state(model.encoder(X, lens), lens, use_cache=True)
    steps = []
    for t in range(Y.shape[1]):
        logits, state = model.decoder(Y[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_cached_greedy_decoding_equals_full_recomputation(name):
    model = _model(name)
    X, _, lens = _batch()
    options = dict(bos=2, eos=3, max_len=12, stop_at_eos=False)
    cached = greedy_decode(model, X, lens, use_cache=True, **options)
    recomputed = greedy_decode(model, X, lens, use_cache=False, **options)
    assert cached == recomputed
    assert all(len(row) <= 12 for row in cached)


def test_padding_beyond_the_valid_length_does_not_change_the_transformer():
    # (The GRU encoders run over padding too, as the book's do, so their final state sees it.)
    model = _model("transformer")
    X, Y, lens = _batch()
    changed = X.clone()
    changed[1, 2:] = (changed[1, 2:] + 1) % SRC_V  # example 1 has 2 valid source tokens
    torch.testing.assert_close(model(changed, Y, lens)[1], model(X, Y, lens)[1], rtol=0, atol=1e-12)


def test_transformer_scratch_and_sdpa_paths_agree():
    scratch, fused = _model("transformer", dropout=0.3), _model("transformer", dropout=0.3, attention="sdpa")
    fused.load_state_dict(scratch.state_dict())
    X, Y, lens = _batch()
    a, b = scratch(X, Y, lens), fused(X, Y, lens)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    a.square().sum().backward()
    b.square().sum().backward()
    for p, q in zip(scratch.parameters(), fused.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-10)


def test_transformer_pre_norm_variant_builds_and_decodes():
    model = _model("transformer", norm_first=True)
    X, Y, lens = _batch()
    assert model(X, Y, lens).shape == (3, 5, TGT_V)
    assert greedy_decode(model, X, lens, bos=2, eos=3, max_len=4, use_cache=True) == \
        greedy_decode(model, X, lens, bos=2, eos=3, max_len=4, use_cache=False)  # fmt: skip


def test_gru_decoder_context_stays_the_encoders_final_state():
    model = _model("seq2seq")
    X, Y, lens = _batch()
    enc_outputs = model.encoder(X, lens)
    state = model.decoder.init_state(enc_outputs, lens)
    _, after = model.decoder(Y[:, :3], state)
    torch.testing.assert_close(after.context, enc_outputs[1][-1])
    assert not torch.equal(after.hidden, state.hidden)


def test_bahdanau_weights_cover_only_the_valid_source():
    model = _model("seq2seq-attention")
    X, Y, lens = _batch()
    with record_attention(model):
        state = model.decoder.init_state(model.encoder(X, lens), lens)
        model.decoder(Y[:, :1], state)
        (weights,) = model.decoder.cross_attention_weights()
    assert weights.shape == (3, 1, 1, 6)
    assert weights[1, ..., 2:].eq(0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 1, 1, dtype=torch.float64))


def test_transformer_records_every_layer_and_head():
    model = _model("transformer", num_layers=3)
    X, _, lens = _batch()
    with record_attention(model):
        greedy_decode(model, X, lens, bos=2, eos=3, max_len=2)
        encoder, cross = model.encoder.self_attention_weights(), model.decoder.cross_attention_weights()
    assert [w.shape for w in encoder] == [(3, 4, 6, 6)] * 3
    assert [w.shape for w in cross] == [(3, 4, 1, 6)] * 3


@pytest.mark.parametrize("options, message", [({"attention": "flash"}, "attention='flash'"),
                                              ({"num_hiddens": 30, "num_heads": 4}, "divisible")])  # fmt: skip
def test_bad_transformer_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        create_model("transformer", src_vocab_size=5, tgt_vocab_size=5, **options)
