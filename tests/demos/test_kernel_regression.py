import torch

from divekit.demos.kernel_regression import fit_kernel_width, leave_one_out, run_kernel_regression, toy_data


def test_toy_data_follows_the_notes_and_is_reproducible():
    data = toy_data(seed=3)
    assert data.x_train.shape == (50,) and bool((data.x_train[1:] >= data.x_train[:-1]).all())
    assert 0 <= data.x_train.min() and data.x_train.max() < 5
    torch.testing.assert_close(data.x_test, torch.arange(0, 5, 0.1))
    torch.testing.assert_close(data.y_truth, 2 * torch.sin(data.x_test) + data.x_test**0.8)
    residual = data.y_train - (2 * torch.sin(data.x_train) + data.x_train**0.8)
    assert 0.3 < residual.std() < 0.7  # N(0, 0.5) noise
    torch.testing.assert_close(toy_data(seed=3).y_train, data.y_train)


def test_leave_one_out_drops_each_point_from_its_own_row():
    assert leave_one_out(torch.tensor([1.0, 2, 3])).tolist() == [[2, 3], [1, 3], [1, 2]]


def test_fitting_w_lowers_the_loss():
    _, losses = fit_kernel_width(toy_data(), epochs=5)
    assert losses[-1] < losses[0]


def test_run_writes_fits_and_heatmaps(tmp_path):
    result = run_kernel_regression(tmp_path, seed=0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["nonparametric-fit.png", "nonparametric-weights.png", "parametric-fit.png", "parametric-weights.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.files)
    # learning a narrower kernel fits the truth better than the fixed w = 1 on this data
    assert result.w > 1 and result.mse_parametric < result.mse_nonparametric
