"""MyLinear and MySequential (notes §1.1): the notes' own code gets the hints it needs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from divekit.nn import basics
from divekit.check import check
from tests.check.support import Case, case_id, verify


class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units))

    def forward(self, X):
        return F.relu(torch.matmul(X, self.weight) + self.bias)


class NotesLinear(MyLinear):
    """The notes' forward, with .data."""

    def forward(self, X):
        linear = torch.matmul(X, self.weight.data) + self.bias.data
        return F.relu(linear)


class NotesLinearTypo(nn.Module):
    """The notes' constructor as printed: self.bais."""

    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bais = nn.Parameter(torch.zeros(units))

    def forward(self, X):
        return F.relu(torch.matmul(X, self.weight) + self.bias)


class LinearNoReLU(MyLinear):
    def forward(self, X):
        return torch.matmul(X, self.weight) + self.bias


class LinearReLUFirst(MyLinear):
    def forward(self, X):
        return F.relu(torch.matmul(X, self.weight)) + self.bias


class LinearPlainTensor(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = torch.randn(in_units, units, requires_grad=True)
        self.bias = nn.Parameter(torch.zeros(units))

    def forward(self, X):
        return F.relu(X @ self.weight + self.bias)


class MySequential(nn.Module):
    def __init__(self, *args):
        super().__init__()
        for index, module in enumerate(args):
            self.add_module(str(index), module)

    def forward(self, X):
        for module in self._modules.values():
            X = module(X)
        return X


class NotesSequential(nn.Module):
    """The notes' version: the module itself is the key."""

    def __init__(self, *args):
        super().__init__()
        for block in args:
            self._modules[block] = block

    def forward(self, X):
        for block in self._modules.values():
            X = block(X)
        return X


class ListSequential(nn.Module):
    def __init__(self, *args):
        super().__init__()
        self.blocks = list(args)

    def forward(self, X):
        for block in self.blocks:
            X = block(X)
        return X


class UnchainedSequential(MySequential):
    def forward(self, X):
        out = X
        for module in self._modules.values():
            out = module(X)
        return out


class EarlyReturnSequential(MySequential):
    def forward(self, X):
        for module in self._modules.values():
            return module(X)


CASES = [
    Case("linear", basics.MyLinear),
    Case("linear", MyLinear),
    Case("linear", NotesLinear, "`.data` detaches the parameter", "the notes' forward reads .data"),
    Case("linear", NotesLinearTypo, "self.bais", "the notes' typo self.bais"),
    Case("linear", LinearNoReLU, "ReLU is missing", "no ReLU"),
    Case("linear", LinearReLUFirst, "ReLU comes before the bias", "relu(X @ W) + b"),
    Case("linear", LinearPlainTensor, "wrap it in nn.Parameter", "weight is a plain tensor"),
    Case("sequential", basics.MySequential),
    Case("sequential", nn.Sequential),
    Case("sequential", MySequential),
    Case("sequential", NotesSequential, "used as the key of self._modules", "the notes' module-as-key"),
    Case("sequential", ListSequential, "plain list or dict are not registered", "children in a plain list"),
    Case("sequential", UnchainedSequential, "previous module's output", "every module reads X"),
    Case("sequential", EarlyReturnSequential, "returns inside the loop", "return inside the loop"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)


def test_notes_sequential_also_runs_a_repeated_module_once():
    report = check(NotesSequential, "sequential", max_examples=5)
    assert any("runs only once" in hint for hint in report.hints)
    assert report.result("a module given twice runs twice (MySequential(a, ReLU(), a))").status == "fail"
