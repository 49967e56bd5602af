"""BatchNorm is a twin of nn.BatchNorm1d/2d: same names, outputs, gradients and running statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from divekit.nn.norm import BatchNorm, batch_norm

CASES = [(2, nn.BatchNorm1d, (8, 5)), (3, nn.BatchNorm1d, (6, 5, 4)), (4, nn.BatchNorm2d, (4, 5, 3, 3))]


def twins(num_dims: int, torch_cls: type, momentum: float | None = 0.1) -> tuple[BatchNorm, nn.Module]:
    ours = BatchNorm(5, num_dims, momentum=momentum).double()
    ref = torch_cls(5, momentum=momentum).double()
    with torch.no_grad():  # non-trivial affine parameters, copied across
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.uniform_(-0.5, 0.5)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def compare_step(ours: nn.Module, ref: nn.Module, shape: tuple[int, ...]) -> None:
    X = (torch.randn(*shape, dtype=torch.float64) * 3 + 1).requires_grad_()
    out_ours, out_ref = ours(X), ref(X)
    torch.testing.assert_close(out_ours, out_ref)
    probe = torch.randn_like(out_ref)
    g_ours = torch.autograd.grad((out_ours * probe).sum(), [X, ours.weight, ours.bias])
    g_ref = torch.autograd.grad((out_ref * probe).sum(), [X, ref.weight, ref.bias])
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize(("num_dims", "torch_cls", "shape"), CASES)
def test_train_and_eval_match_torch(num_dims, torch_cls, shape, momentum):
    ours, ref = twins(num_dims, torch_cls, momentum)
    for _ in range(3):
        compare_step(ours, ref, shape)
    for key, value in ref.state_dict().items():  # running mean, unbiased running variance, batch count
        torch.testing.assert_close(ours.state_dict()[key], value, msg=key)
    assert int(ours.num_batches_tracked) == 3
    ours.eval(), ref.eval()
    compare_step(ours, ref, shape)
    assert int(ours.num_batches_tracked) == 3


@pytest.mark.parametrize(("num_dims", "torch_cls", "shape"), CASES)
def test_state_dict_loads_across_both_ways(num_dims, torch_cls, shape):
    trained = torch_cls(5).double()
    trained(torch.randn(*shape, dtype=torch.float64) * 2 + 3)  # move the running statistics
    ours = BatchNorm(5, num_dims).double()
    ours.load_state_dict(trained.state_dict())
    back = torch_cls(5).double()
    back.load_state_dict(ours.state_dict())
    assert list(ours.state_dict()) == list(trained.state_dict())
    ours.eval(), trained.eval()
    X = torch.randn(*shape, dtype=torch.float64)
    torch.testing.assert_close(ours(X), trained(X))


def test_running_variance_is_unbiased_and_normalisation_biased():
    X = torch.tensor([[1.0], [3.0]], dtype=torch.float64)  # mean 2, biased var 1, unbiased var 2
    mean, var = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    gamma, beta = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    Y = batch_norm(X, gamma, beta, mean, var, eps=0.0, momentum=1.0)
    assert Y.flatten().tolist() == [-1.0, 1.0]
    assert mean.item() == 2.0 and var.item() == 2.0


def test_eval_mode_is_per_example():
    bn = BatchNorm(3, 2).double()
    bn(torch.randn(16, 3, dtype=torch.float64))
    bn.eval()
    X = torch.randn(4, 3, dtype=torch.float64)
    torch.testing.assert_close(bn(X)[:1], bn(X[:1]))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="more than 1 value"):
        BatchNorm(3, 2)(torch.randn(1, 3))
    with pytest.raises(ValueError, match="num_dims=4"):
        BatchNorm(3, 4)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="num_dims"):
        BatchNorm(3, 5)
