import pytest
import torch
from torch import nn

from divekit.nn.attention import record_attention
from divekit.nn.multihead_attention import KVCache, MultiHeadAttention, load_torch_weights

E, HEADS = 8, 2


def _pair(*, bias: bool, kdim: int | None = None):
    torch.manual_seed(1)
    reference = nn.MultiheadAttention(E, HEADS, bias=bias, batch_first=True, kdim=kdim, vdim=kdim).double()
    scratch = MultiHeadAttention(E, HEADS, key_size=kdim, value_size=kdim, bias=bias).double()
    return scratch, load_torch_weights(scratch, reference), reference


def _grads(module: nn.Module, *inputs: torch.Tensor) -> list[torch.Tensor]:
    return [x.grad for x in inputs] + [p.grad for p in module.parameters()]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_scratch_multihead_equals_torch_with_padding_and_causal_masks(bias, causal):
    _, scratch, reference = _pair(bias=bias)
    X = torch.randn(3, 5, E, dtype=torch.float64)
    valid_lens = torch.tensor([5, 2, 4])
    padding = torch.arange(5)[None, :] >= valid_lens[:, None]  # True = ignore this key
    future = torch.ones(5, 5, dtype=torch.bool).triu(1) if causal else None  # True = not allowed
    Xs, Xr = X.clone().requires_grad_(), X.clone().requires_grad_()
    out = scratch(Xs, Xs, Xs, valid_lens, causal=causal)
    expected, _ = reference(Xr, Xr, Xr, key_padding_mask=padding, attn_mask=future, need_weights=False)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    # parameter order differs (packed in_proj in torch): compare by role
    torch.testing.assert_close(Xs.grad, Xr.grad, rtol=0, atol=1e-12)
    in_proj = torch.cat([scratch.W_q.weight.grad, scratch.W_k.weight.grad, scratch.W_v.weight.grad])
    torch.testing.assert_close(in_proj, reference.in_proj_weight.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(scratch.W_o.weight.grad, reference.out_proj.weight.grad, rtol=0, atol=1e-12)
    if bias:
        in_bias = torch.cat([scratch.W_q.bias.grad, scratch.W_k.bias.grad, scratch.W_v.bias.grad])
        torch.testing.assert_close(in_bias, reference.in_proj_bias.grad, rtol=0, atol=1e-12)


def test_cross_attention_with_other_key_width_equals_torch():
    _, scratch, reference = _pair(bias=True, kdim=6)
    q, kv = torch.randn(2, 3, E, dtype=torch.float64), torch.randn(2, 7, 6, dtype=torch.float64)
    valid_lens = torch.tensor([7, 3])
    expected, _ = reference(q, kv, kv, key_padding_mask=torch.arange(7)[None] >= valid_lens[:, None])
    torch.testing.assert_close(scratch(q, kv, kv, valid_lens), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("valid", [None, "1d", "2d"])
@pytest.mark.parametrize("causal", [False, True])
def test_scratch_and_fused_paths_agree_in_outputs_and_gradients(valid, causal):
    torch.manual_seed(0)
    scratch = MultiHeadAttention(E, HEADS, bias=True, dropout=0.3).double().eval()
    fused = MultiHeadAttention(E, HEADS, bias=True, dropout=0.3, impl="sdpa").double().eval()
    fused.load_state_dict(scratch.state_dict())
    X = torch.randn(2, 4, E, dtype=torch.float64)
    lens = {None: None, "1d": torch.tensor([4, 2]), "2d": torch.tensor([[1, 2, 3, 4], [1, 1, 2, 2]])}[valid]
    outputs = []
    for module in (scratch, fused):
        Xi = X.clone().requires_grad_()
        out = module(Xi, Xi, Xi, lens, causal=causal)
        out.square().sum().backward()
        outputs.append((out, Xi.grad, [p.grad for p in module.parameters()]))
    (a, ga, pa), (b, gb, pb) = outputs
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(ga, gb, rtol=0, atol=1e-12)
    for x, y in zip(pa, pb):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-12)


def test_incremental_decoding_with_cache_equals_full_causal_attention():
    torch.manual_seed(0)
    mha = MultiHeadAttention(E, HEADS).double().eval()
    X = torch.randn(2, 6, E, dtype=torch.float64)
    full = mha(X, X, X, causal=True)
    cache = KVCache()
    first = mha(X[:, :2], X[:, :2], X[:, :2], causal=True, cache=cache)  # a prefix of two steps at once
    steps = [first] + [mha(X[:, t : t + 1], X[:, t : t + 1], X[:, t : t + 1], causal=True, cache=cache) for t in range(2, 6)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-12)
    assert len(cache) == 6 and cache.keys.shape == (2, HEADS, 6, E // HEADS)


def test_static_cache_projects_the_keys_once():
    mha = MultiHeadAttention(E, HEADS).double()
    memory, cache = torch.randn(2, 5, E, dtype=torch.float64), KVCache(static=True)
    q = torch.randn(2, 1, E, dtype=torch.float64)
    first = mha(q, memory, memory, cache=cache)
    # a filled static cache ignores the keys and values passed in
    torch.testing.assert_close(mha(q, memory * 0, memory * 0, cache=cache), first)
    assert len(cache) == 5


def test_cache_select_reorders_the_batch():
    cache = KVCache()
    cache.extend(torch.arange(3.0).reshape(3, 1, 1, 1), torch.arange(3.0).reshape(3, 1, 1, 1))
    picked = cache.select(torch.tensor([2, 2, 0]))
    assert picked.keys.flatten().tolist() == [2, 2, 0] and len(picked) == 1


def test_recording_uses_the_scratch_path_and_keeps_per_head_weights():
    mha = MultiHeadAttention(E, HEADS, impl="sdpa").eval()
    X = torch.randn(1, 4, E)
    with record_attention(mha):
        out = mha(X, X, X, torch.tensor([3]))
        weights = mha.attention_weights
    assert weights.shape == (1, HEADS, 4, 4) and weights[..., 3].eq(0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, HEADS, 4))
    torch.testing.assert_close(out, mha(X, X, X, torch.tensor([3])), rtol=1e-5, atol=1e-6)


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="implementation"):
        MultiHeadAttention(8, 2, impl="flash")
