"""The notes' toy problem for attention pooling (§6.11.2-6.11.3), end to end.

``f(x) = 2 sin(x) + x^0.8``; 50 training inputs drawn uniformly from [0, 5)
and sorted, with N(0, 0.5) noise on the outputs; test inputs 0, 0.1, ..., 4.9.
Non-parametric pooling uses the training points as keys directly; the
learnable ``w`` is fitted with SGD (lr 0.5, 5 epochs, loss: half the summed
squared error), each training input attending to all the *other* training
points, so it cannot simply look itself up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from divekit.nn.kernel_regression import NWKernelRegression, nadaraya_watson


def target_function(x: torch.Tensor) -> torch.Tensor:
    """The notes' ``f(x) = 2 sin(x) + x^0.8``."""
    return 2 * torch.sin(x) + x**0.8


@dataclass
class ToyData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_truth: torch.Tensor


def toy_data(*, n_train: int = 50, noise: float = 0.5, seed: int = 0) -> ToyData:
    """The notes' data set, reproducible from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    x_train = torch.sort(torch.rand(n_train, generator=gen) * 5).values
    y_train = target_function(x_train) + torch.normal(0.0, noise, (n_train,), generator=gen)
    x_test = torch.arange(0, 5, 0.1)
    return ToyData(x_train, y_train, x_test, target_function(x_test))


def leave_one_out(x: torch.Tensor) -> torch.Tensor:
    """``(n, n - 1)``: row ``i`` holds every entry of ``x`` but the ``i``-th."""
    n = x.shape[0]
    others = ~torch.eye(n, dtype=torch.bool)
    return x.repeat(n, 1)[others].reshape(n, n - 1)  # (n, n) without the diagonal -> (n, n - 1)


def fit_kernel_width(
    data: ToyData, *, epochs: int = 5, lr: float = 0.5, seed: int = 0
) -> tuple[NWKernelRegression, list[float]]:
    """Fit ``w`` on the training points; return the model and the loss after each epoch."""
    torch.manual_seed(seed)
    net = NWKernelRegression()
    keys, values = leave_one_out(data.x_train), leave_one_out(data.y_train)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = ((net(data.x_train, keys, values) - data.y_train) ** 2).sum() / 2
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return net, losses


@dataclass
class KernelRegressionResult:
    """Test errors against the noiseless truth, the learned ``w``, and the PNGs written."""

    mse_nonparametric: float
    mse_parametric: float
    w: float
    train_losses: list[float]
    files: list[Path]


def run_kernel_regression(
    out_dir: str | Path, *, seed: int = 0, epochs: int = 5, lr: float = 0.5
) -> KernelRegressionResult:
    """Fit both poolings on the toy data; write the fits and attention heatmaps as PNGs into ``out_dir``."""
    from divekit.plot_attention import attention_heatmaps, regression_fit

    out = Path(out_dir)
    data = toy_data(seed=seed)
    plain, plain_weights = nadaraya_watson(data.x_test, data.x_train, data.y_train)
    net, losses = fit_kernel_width(data, epochs=epochs, lr=lr, seed=seed)
    with torch.no_grad():
        keys = data.x_train.repeat(len(data.x_test), 1)  # (Q, K): every test input sees all training points
        learned = net(data.x_test, keys, data.y_train.repeat(len(data.x_test), 1))  # values (Q, K) alike
    files = []
    variants = (("nonparametric", plain, plain_weights), ("parametric", learned, net.attention_weights))
    for name, prediction, weights in variants:
        fit, heat = out / f"{name}-fit.png", out / f"{name}-weights.png"
        title = f"{name} attention pooling" + (f", w = {net.w.item():.2f}" if name == "parametric" else "")
        regression_fit(data.x_train.numpy(), data.y_train.numpy(), data.x_test.numpy(),
                       {"truth": data.y_truth.numpy(), "prediction": prediction.numpy()}, fit, title=title)  # fmt: skip
        attention_heatmaps([weights[None].numpy()], heat, layer_names=[title], xlabel="sorted training inputs",
                           ylabel="sorted test inputs")  # fmt: skip
        files += [fit, heat]
    mse = lambda p: float(((p - data.y_truth) ** 2).mean())  # noqa: E731
    return KernelRegressionResult(mse(plain), mse(learned), net.w.item(), losses, files)
