"""Signatures judged by inspection, and a learner's parameters matched to the reference's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from divekit.check.fit import describe, is_function, is_module_class, match_parameters, takes_positional
from divekit.check.model import Unrunnable


def two(X, K):
    pass


def two_and_options(X, K, *, stride=1):
    pass


def needs_keyword(X, K, *, mode):
    pass


def test_positional_arity():
    assert takes_positional(two, 2) and not takes_positional(two, 3) and not takes_positional(two, 1)
    assert takes_positional(two_and_options, 2)
    assert not takes_positional(needs_keyword, 2)
    assert takes_positional(lambda *modules: None, 5)
    assert is_function(two, 2) and not is_function(nn.Linear, 2)
    assert is_module_class(nn.Linear, 2) and not is_module_class(two, 2)


def test_describe_names_what_the_object_is():
    assert describe(two) == "a function two(X, K)"
    assert describe(nn.ReLU) == "an nn.Module class ReLU(inplace: bool = False)"
    assert describe(nn.ReLU()).startswith("an instance of ReLU: pass the class itself")


class Gamma(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, C, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, C, 1, 1))


class Affine(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(C))
        self.bias = nn.Parameter(torch.randn(C))


class Transposed(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(3, 2))


def test_by_name_then_by_order_then_by_mapping():
    reference = Affine(3)
    by_name = match_parameters(Affine(3), reference, None)
    assert by_name.how == "by name"
    learner = Gamma(3)
    by_order = match_parameters(learner, reference, None)
    assert by_order.describe() == "parameters copied from the reference by order: gamma <- weight, beta <- bias"
    by_order.copy(reference, learner)
    torch.testing.assert_close(learner.gamma.flatten(), reference.weight)
    linear = nn.Linear(3, 2)
    mapped = match_parameters(Transposed(), linear, {"W": "weight.T"})
    ours = Transposed()
    mapped.copy(linear, ours)
    torch.testing.assert_close(ours.W, linear.weight.t())


def test_gradients_come_back_in_the_learners_layout():
    reference, learner = Affine(2), Gamma(2)
    match = match_parameters(learner, reference, None)
    (reference.weight.sum() * 3).backward()
    (learner.gamma.sum() * 3).backward()
    name, expected, actual = match.gradients(reference, learner)[0]
    assert name == "gamma" and expected.shape == actual.shape == (1, 2, 1, 1)


def test_parameters_that_cannot_match_are_one_line():
    with pytest.raises(Unrunnable, match=r"Transposed's parameters \[W \(3, 2\)\] do not match the reference's "
                                         r"\[weight \(2, 3\), bias \(2,\)\]"):
        match_parameters(Transposed(), nn.Linear(3, 2), None)
    with pytest.raises(Unrunnable, match="mapping names 'V'"):
        match_parameters(Transposed(), nn.Linear(3, 2), {"V": "weight"})
    with pytest.raises(Unrunnable, match=r"shapes \(3, 2\) and \(2, 3\) differ"):
        match_parameters(Transposed(), nn.Linear(3, 2), {"W": "weight"})
