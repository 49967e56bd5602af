import torch

from divekit.nn.kernel_regression import NWKernelRegression, nadaraya_watson


def test_equal_keys_give_the_mean_of_the_values():
    predictions, weights = nadaraya_watson(torch.tensor([0.3, 2.0]), torch.ones(4), torch.tensor([1.0, 2, 3, 6]))
    torch.testing.assert_close(predictions, torch.tensor([3.0, 3.0]))
    torch.testing.assert_close(weights, torch.full((2, 4), 0.25))


def test_gaussian_kernel_weights_and_a_narrow_kernel_picks_the_nearest_key():
    keys, values = torch.tensor([0.0, 1.0]), torch.tensor([10.0, 20.0])
    _, weights = nadaraya_watson(torch.tensor([0.0]), keys, values)
    expected = torch.softmax(torch.tensor([0.0, -0.5]), dim=0)  # -(x - x_i)^2 / 2
    torch.testing.assert_close(weights[0], expected)
    predictions, _ = nadaraya_watson(torch.tensor([0.2, 0.9]), keys, values, w=50.0)
    torch.testing.assert_close(predictions, torch.tensor([10.0, 20.0]))


def test_per_query_keys_match_shared_keys():
    queries, keys, values = torch.rand(3), torch.rand(5), torch.rand(5)
    shared, _ = nadaraya_watson(queries, keys, values, w=2.0)
    per_query, _ = nadaraya_watson(queries, keys.repeat(3, 1), values.repeat(3, 1), w=2.0)
    torch.testing.assert_close(shared, per_query)


def test_learnable_width_matches_the_function_and_gets_a_gradient():
    net = NWKernelRegression()
    queries, keys, values = torch.rand(3), torch.rand(3, 4), torch.rand(3, 4)
    out = net(queries, keys, values)
    expected, weights = nadaraya_watson(queries, keys, values, w=net.w.detach())
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(net.attention_weights, weights)
    out.sum().backward()
    assert net.w.grad is not None and net.w.grad.abs().item() > 0
