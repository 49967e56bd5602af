"""The from-scratch convolutions equal F.conv2d (outputs and gradients, float64) and the book's values."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from divekit.nn.conv import (
    Conv2D,
    conv2d,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    edge_image,
    learn_kernel,
)


def random_case(seed: int) -> dict:
    """A random small convolution: channels, sizes, kernel, stride and padding."""
    rng = random.Random(seed)
    kh, kw = rng.randint(1, 4), rng.randint(1, 4)
    ph, pw = rng.randint(0, kh - 1), rng.randint(0, kw - 1)
    return {
        "ci": rng.randint(1, 3), "co": rng.randint(1, 3),
        "h": rng.randint(kh, 9), "w": rng.randint(kw, 9),
        "k": (kh, kw), "stride": (rng.randint(1, 3), rng.randint(1, 3)), "padding": (ph, pw),
    }  # fmt: skip


def leaves(*shapes: tuple[int, ...]) -> list[torch.Tensor]:
    return [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in shapes]


def assert_same_with_grads(ours: torch.Tensor, ref: torch.Tensor, inputs: list[torch.Tensor]) -> None:
    """Equal outputs, and equal gradients of a random linear function of them."""
    torch.testing.assert_close(ours, ref)
    probe = torch.randn_like(ref)
    g_ours = torch.autograd.grad((ours * probe).sum(), inputs)
    g_ref = torch.autograd.grad((ref * probe).sum(), inputs)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


def test_corr2d_book_value():
    X = torch.arange(9.0).reshape(3, 3)
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert corr2d(X, K).tolist() == [[19.0, 25.0], [37.0, 43.0]]


def test_corr2d_multi_in_book_value():
    X = torch.stack([torch.arange(9.0).reshape(3, 3), torch.arange(1.0, 10.0).reshape(3, 3)])
    K = torch.stack([torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]])])
    assert corr2d_multi_in(X, K).tolist() == [[56.0, 72.0], [104.0, 120.0]]


def test_corr2d_multi_in_out_stacks_shifted_kernels_as_in_the_book():
    X = torch.stack([torch.arange(9.0).reshape(3, 3), torch.arange(1.0, 10.0).reshape(3, 3)])
    K = torch.stack([torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]])])
    K3 = torch.stack((K, K + 1, K + 2), 0)  # (3, 2, 2, 2)
    Y = corr2d_multi_in_out(X, K3)
    assert Y.shape == (3, 2, 2)
    assert Y[0].tolist() == [[56.0, 72.0], [104.0, 120.0]]
    assert Y[1].tolist() == [[76.0, 100.0], [148.0, 172.0]]


@pytest.mark.parametrize("seed", range(6))
def test_corr2d_matches_conv2d(seed):
    c = random_case(seed)
    X, K = leaves((c["h"], c["w"]), c["k"])
    ours = corr2d(X, K, stride=c["stride"], padding=c["padding"])
    ref = F.conv2d(X[None, None], K[None, None], stride=c["stride"], padding=c["padding"])[0, 0]
    assert_same_with_grads(ours, ref, [X, K])


@pytest.mark.parametrize("seed", range(6))
def test_corr2d_multi_in_out_matches_conv2d(seed):
    c = random_case(100 + seed)
    X, K = leaves((c["ci"], c["h"], c["w"]), (c["co"], c["ci"], *c["k"]))
    ours = corr2d_multi_in_out(X, K, stride=c["stride"], padding=c["padding"])
    ref = F.conv2d(X[None], K, stride=c["stride"], padding=c["padding"])[0]
    assert_same_with_grads(ours, ref, [X, K])


def test_corr2d_multi_in_matches_single_output_conv2d():
    X, K = leaves((3, 5, 6), (3, 2, 3))
    assert_same_with_grads(corr2d_multi_in(X, K), F.conv2d(X[None], K[None])[0, 0], [X, K])


def test_1x1_is_a_matrix_product_and_equals_conv2d():
    X, K = leaves((3, 4, 5), (2, 3, 1, 1))
    ours = corr2d_multi_in_out_1x1(X, K)
    assert_same_with_grads(ours, F.conv2d(X[None], K)[0], [X, K])
    torch.testing.assert_close(ours, corr2d_multi_in_out(X, K))


@pytest.mark.parametrize("seed", range(6))
def test_batched_conv2d_matches_F_conv2d(seed):
    c = random_case(200 + seed)
    X, K, b = leaves((3, c["ci"], c["h"], c["w"]), (c["co"], c["ci"], *c["k"]), (c["co"],))
    ours = conv2d(X, K, b, stride=c["stride"], padding=c["padding"])
    ref = F.conv2d(X, K, b, stride=c["stride"], padding=c["padding"])
    assert_same_with_grads(ours, ref, [X, K, b])


@pytest.mark.parametrize("bias", [True, False])
def test_Conv2D_is_a_twin_of_nn_Conv2d(bias):
    ours = Conv2D(3, 4, (3, 2), stride=2, padding=1, bias=bias).double()
    ref = nn.Conv2d(3, 4, (3, 2), stride=2, padding=1, bias=bias).double()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ref.load_state_dict(ours.state_dict())
    X = torch.randn(2, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    out_ours, out_ref = ours(X), ref(X)
    torch.testing.assert_close(out_ours, out_ref)
    probe = torch.randn_like(out_ref)
    params = lambda m: [X, *m.parameters()]  # noqa: E731
    g_ours = torch.autograd.grad((out_ours * probe).sum(), params(ours))
    g_ref = torch.autograd.grad((out_ref * probe).sum(), params(ref))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)
    ours.load_state_dict(nn.Conv2d(3, 4, (3, 2), bias=bias).double().state_dict())  # and back


def test_Conv2D_default_init_has_nn_Conv2d_scale():
    torch.manual_seed(0)
    ours = Conv2D(16, 32, 3)
    bound = 1 / (16 * 9) ** 0.5  # kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert ours.weight.abs().max() <= bound and ours.weight.abs().max() > 0.9 * bound
    assert ours.bias.abs().max() <= bound


def test_edge_image_matches_the_book():
    X, Y = edge_image()
    assert X.shape == (6, 8) and Y.shape == (6, 7)
    assert Y[:, 1].tolist() == [1.0] * 6 and Y[:, 5].tolist() == [-1.0] * 6
    assert Y.abs().sum() == 12  # zero everywhere else
    # The kernel detects vertical edges only: on the transposed image it finds none.
    assert corr2d(X.t(), torch.tensor([[1.0, -1.0]])).abs().sum() == 0


def test_learn_kernel_recovers_the_edge_detector():
    X, Y = edge_image()
    kernel, losses = learn_kernel(X, Y, (1, 2), lr=3e-2, steps=20)
    torch.testing.assert_close(kernel, torch.tensor([[1.0, -1.0]]), atol=0.05, rtol=0)
    assert losses[-1] < losses[0] / 100


def test_kernel_larger_than_input_is_refused():
    with pytest.raises(ValueError, match="larger than"):
        corr2d(torch.zeros(2, 2), torch.zeros(3, 3))
