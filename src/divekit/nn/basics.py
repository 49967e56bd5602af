"""Model construction (notes §1.1 模型构造): a custom MLP, a Sequential, a Linear."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    """A multilayer perceptron written as a ``nn.Module`` subclass (notes §1.1.1).

    ``forward`` may run any computation; here one hidden layer with ReLU.

    Args:
        in_features: width of the input.
        num_hiddens: width of the hidden layer.
        out_features: width of the output.
    """

    def __init__(self, in_features: int = 20, num_hiddens: int = 256, out_features: int = 10) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, num_hiddens)
        self.out = nn.Linear(num_hiddens, out_features)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(X)))


class MySequential(nn.Module):
    """Runs its child modules in the order they were given (notes §1.1.2).

    Children are registered under the keys ``"0"``, ``"1"``, ... exactly as
    ``nn.Sequential`` names them, so the two share ``state_dict`` keys.
    (The notes use the module itself as the key, which ``nn.Module`` refuses.)
    """

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            self.add_module(str(index), module)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        for module in self._modules.values():
            X = module(X)
        return X

    def __getitem__(self, index: int) -> nn.Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)


class MyLinear(nn.Module):
    """A fully connected layer built on ``nn.Parameter`` (notes §1.1.3).

    Computes ``X @ weight + bias``, optionally followed by ReLU as in the notes.
    Unlike the notes' version, ``forward`` uses the parameters themselves, not
    ``.data``: reading ``.data`` detaches the tensor from autograd, so the
    layer would never receive gradients and never train.

    Args:
        in_units: width of the input.
        out_units: width of the output.
        relu: apply ReLU to the output, as the notes' layer does.
    """

    def __init__(self, in_units: int, out_units: int, *, relu: bool = True) -> None:
        super().__init__()
        # Stored (in, out) as in the notes; scaled like nn.Linear's default init.
        bound = 1.0 / math.sqrt(in_units)
        self.weight = nn.Parameter(torch.empty(in_units, out_units).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_units))
        self.relu = relu

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        linear = torch.matmul(X, self.weight) + self.bias
        return F.relu(linear) if self.relu else linear

    def extra_repr(self) -> str:
        in_units, out_units = self.weight.shape
        return f"in_units={in_units}, out_units={out_units}, relu={self.relu}"
