import math

import pytest
import torch
from torch import nn

from divekit.nn.multihead_attention import KVCache, load_torch_weights
from divekit.nn.transformer import (
    AddNorm,
    PositionalEncoding,
    PositionWiseFFN,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)

D, FFN, HEADS = 8, 16, 2


def test_positional_encoding_values():
    pe = PositionalEncoding(6, dropout=0.0, max_len=20)
    P = pe(torch.zeros(1, 20, 6))[0]
    for pos, i in [(0, 0), (3, 1), (19, 2)]:
        angle = pos / 10000 ** (2 * i / 6)
        assert P[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert P[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    torch.testing.assert_close(pe(torch.zeros(1, 2, 6), offset=7)[0], P[7:9])


def test_positional_encoding_odd_width_limits_and_state():
    pe = PositionalEncoding(5, max_len=4)
    assert pe(torch.zeros(1, 4, 5)).shape == (1, 4, 5)
    with pytest.raises(ValueError, match="positions up to 5"):
        pe(torch.zeros(1, 2, 5), offset=3)
    assert "P" not in pe.state_dict()  # recomputed, not stored in checkpoints


def test_positional_encoding_dropout_only_in_training():
    pe = PositionalEncoding(4, dropout=0.5)
    X = torch.ones(2, 3, 4)
    assert (pe(X) == 0).any()
    assert not (pe.eval()(X) == 0).any()


def test_ffn_and_addnorm_shapes_and_formulas():
    ffn = PositionWiseFFN(4, 8)
    assert ffn(torch.ones(2, 3, 4)).shape == (2, 3, 4)
    X, Y = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    post = AddNorm(4).eval()
    torch.testing.assert_close(post(X, Y), nn.functional.layer_norm(X + Y, (4,)))
    torch.testing.assert_close(post.residual(X, lambda x: 2 * x), nn.functional.layer_norm(3 * X, (4,)))
    pre = AddNorm(4, norm_first=True).eval()
    torch.testing.assert_close(pre.residual(X, lambda x: 2 * x), X + 2 * nn.functional.layer_norm(X, (4,)))


def _copy_encoder_layer(block: TransformerEncoderBlock, layer: nn.TransformerEncoderLayer) -> None:
    load_torch_weights(block.attention, layer.self_attn)
    block.ffn.dense1.load_state_dict(layer.linear1.state_dict())
    block.ffn.dense2.load_state_dict(layer.linear2.state_dict())
    block.addnorm1.ln.load_state_dict(layer.norm1.state_dict())
    block.addnorm2.ln.load_state_dict(layer.norm2.state_dict())


def _randomise_norms(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            nn.init.normal_(m.weight)
            nn.init.normal_(m.bias)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_equals_torch_encoder_layer_in_eval(norm_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(D, HEADS, FFN, dropout=0.1, activation="relu", batch_first=True,
                                       norm_first=norm_first).double()  # fmt: skip
    _randomise_norms(layer)
    block = TransformerEncoderBlock(D, FFN, HEADS, dropout=0.1, bias=True, norm_first=norm_first).double()
    _copy_encoder_layer(block, layer)
    layer.eval(), block.eval()
    valid_lens = torch.tensor([5, 3])
    X = torch.randn(2, 5, D, dtype=torch.float64)
    Xs, Xr = X.clone().requires_grad_(), X.clone().requires_grad_()
    out = block(Xs, valid_lens)
    expected = layer(Xr, src_key_padding_mask=torch.arange(5)[None] >= valid_lens[:, None])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(Xs.grad, Xr.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(block.ffn.dense1.weight.grad, layer.linear1.weight.grad, rtol=0, atol=1e-12)
    with torch.no_grad():  # without autograd PyTorch may take its fused inference path: the same numbers
        fast = layer(X, src_key_padding_mask=torch.arange(5)[None] >= valid_lens[:, None])
    torch.testing.assert_close(block(X, valid_lens).detach(), fast, rtol=0, atol=1e-12)


def test_decoder_block_equals_torch_decoder_layer_in_eval():
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(D, HEADS, FFN, dropout=0.1, batch_first=True).double()
    _randomise_norms(layer)
    block = TransformerDecoderBlock(D, FFN, HEADS, dropout=0.1, bias=True).double()
    load_torch_weights(block.self_attention, layer.self_attn)
    load_torch_weights(block.cross_attention, layer.multihead_attn)
    block.ffn.dense1.load_state_dict(layer.linear1.state_dict())
    block.ffn.dense2.load_state_dict(layer.linear2.state_dict())
    for i in (1, 2, 3):
        getattr(block, f"addnorm{i}").ln.load_state_dict(getattr(layer, f"norm{i}").state_dict())
    layer.eval(), block.eval()
    X, memory = torch.randn(2, 4, D, dtype=torch.float64), torch.randn(2, 6, D, dtype=torch.float64)
    enc_valid_lens = torch.tensor([6, 2])
    expected = layer(X, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64),
                     memory_key_padding_mask=torch.arange(6)[None] >= enc_valid_lens[:, None])  # fmt: skip
    torch.testing.assert_close(block(X, memory, enc_valid_lens), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_with_caches_equals_one_full_pass(norm_first):
    torch.manual_seed(0)
    block = TransformerDecoderBlock(D, FFN, HEADS, dropout=0.2, norm_first=norm_first).double().eval()
    X, memory = torch.randn(2, 5, D, dtype=torch.float64), torch.randn(2, 3, D, dtype=torch.float64)
    lens = torch.tensor([3, 1])
    full = block(X, memory, lens)
    self_cache, cross_cache = KVCache(), KVCache(static=True)
    steps = [block(X[:, t : t + 1], memory, lens, self_cache=self_cache, cross_cache=cross_cache) for t in range(5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-12)
