"""The textbook's LeNet run, as a learner runs it: the baseline of ``benchmarks/lenet_command.py``.

What the book's ``train_ch6`` does on Fashion-MNIST (notes §6.6, written
here from its description, not from its code): torchvision's
``FashionMNIST`` with ``ToTensor``, ``DataLoader`` with 4 workers (the
book's ``get_dataloader_workers()``), LeNet with sigmoid and average
pooling, Xavier-uniform initialisation of the convolutions and linear
layers, SGD with learning rate 0.9, batch 256, 10 epochs; every batch's
loss and correct count are added up on the host (one read each), and the
test accuracy is computed after every epoch. The book's notebook also
redraws a live plot five times per epoch; that is left out here, so the
baseline is, if anything, faster than what a learner sees.

It prints one JSON line per epoch (seconds, training loss and accuracy, test
accuracy) and the book's closing lines.

    python benchmarks/textbook_lenet.py --root DIR   # DIR/FashionMNIST/raw holds the four uncompressed IDX files
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms

BATCH_SIZE, LR, EPOCHS, WORKERS = 256, 0.9, 10, 4


def fashion_mnist_loaders(root: str, batch_size: int, workers: int) -> tuple:
    """The training and test loaders: per-image ``ToTensor``, shuffled training batches."""
    to_tensor = transforms.ToTensor()
    train = torchvision.datasets.FashionMNIST(root, train=True, transform=to_tensor, download=False)
    test = torchvision.datasets.FashionMNIST(root, train=False, transform=to_tensor, download=False)
    return (torch.utils.data.DataLoader(train, batch_size, shuffle=True, num_workers=workers),
            torch.utils.data.DataLoader(test, batch_size, shuffle=False, num_workers=workers))  # fmt: skip


def lenet() -> nn.Module:
    """LeNet-5 as the book builds it: sigmoid activations, 2x2 average pooling, 28x28 input padded by 2."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip


def xavier(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def correct(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """How many predictions are right, read to the host as the book's ``accuracy`` does."""
    return float((y_hat.argmax(dim=1) == y).sum())


def test_accuracy(net: nn.Module, loader, device: torch.device) -> float:
    net.eval()
    right = total = 0.0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            right += correct(net(X), y)
            total += y.numel()
    return right / total


def train(net: nn.Module, train_iter, test_iter, epochs: int, lr: float, device: torch.device) -> None:
    net.apply(xavier)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    step_seconds = 0.0
    for epoch in range(epochs):
        started = time.perf_counter()
        loss_sum = right = count = 0.0
        net.train()
        for X, y in train_iter:
            step_started = time.perf_counter()
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            loss = loss_fn(y_hat, y)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += float(loss) * X.shape[0]
                right += correct(y_hat, y)
                count += X.shape[0]
            step_seconds += time.perf_counter() - step_started
        test_acc = test_accuracy(net, test_iter, device)
        print(json.dumps({"epoch": epoch + 1, "seconds": time.perf_counter() - started, "train_loss": loss_sum / count,
                          "train_acc": right / count, "test_acc": test_acc}), flush=True)  # fmt: skip
    print(f"loss {loss_sum / count:.3f}, train acc {right / count:.3f}, test acc {test_acc:.3f}")
    print(f"{count * epochs / step_seconds:.1f} examples/sec on {device}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder holding FashionMNIST/raw/ (torchvision's layout)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # the book's try_gpu()
    train_iter, test_iter = fashion_mnist_loaders(args.root, BATCH_SIZE, args.workers)
    train(lenet(), train_iter, test_iter, args.epochs, LR, device)


if __name__ == "__main__":
    main()
