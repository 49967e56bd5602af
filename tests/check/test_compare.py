"""How a learner's value is compared with the reference's, and shown."""

from __future__ import annotations

import math

import numpy
import pytest
import torch

from divekit.check.compare import difference, show

TOL = {"rtol": 1e-7, "atol": 1e-10}


def test_equal_tensors_and_a_learners_list_or_array_agree():
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    assert difference(expected, expected.clone(), **TOL) is None
    assert difference(expected, [[1.0, 2.0], [3.0, 4.0]], **TOL) is None
    assert difference(expected, numpy.array([[1.0, 2.0], [3.0, 4.0]]), **TOL) is None
    assert difference(expected, expected.float(), rtol=1e-6, atol=0) is None


def test_the_largest_difference_and_where_it_is():
    expected = torch.zeros(2, 3, dtype=torch.float64)
    actual = expected.clone()
    actual[1, 2], actual[0, 0] = 0.5, 0.25
    found = difference(expected, actual, **TOL)
    assert found.text == "largest difference 0.5 at [1, 2] (2 of 6 entries differ)" and found.largest == 0.5


@pytest.mark.parametrize(("actual", "text"), [
    (None, "got None"),
    (torch.zeros(3), "shape (3,), expected (2,)"),
    ("text", "got str, expected a tensor of shape (2,)"),
])  # fmt: skip
def test_a_missing_or_misshapen_value(actual, text):
    assert difference(torch.zeros(2, dtype=torch.float64), actual, **TOL).text == text


def test_nan_where_a_number_belongs_is_a_difference_of_inf():
    found = difference(torch.tensor([0.5, 0.5], dtype=torch.float64), torch.tensor([math.nan, 0.5]), **TOL)
    assert found.largest == math.inf and "at [0]" in found.text


def test_numbers_sequences_and_strings():
    assert difference(2.0, torch.tensor(2.0), **TOL) is None
    assert difference(2.0, 2.5, **TOL).text == "2.5, expected 2: difference 0.5"
    assert difference(["<unk>", "the"], ["<unk>", "a"], **TOL).text == "['<unk>', 'a'], expected ['<unk>', 'the']"
    assert difference((2, 3), (2, 3), **TOL) is None
    assert difference([torch.ones(1), 2.0], [torch.ones(1), 3.0], **TOL).text.startswith("item 1: 3")


def test_show_is_compact_and_summarises_large_tensors():
    assert show(torch.tensor([[1.0, -0.5]])) == "tensor([[1, -0.5]])"
    assert show(torch.tensor([1.23456789]), digits=8) == "tensor([1.2345679])"
    assert show((torch.zeros(1),)) == "(tensor([0]),)"
    assert show(torch.zeros(10, 10)).startswith("tensor of shape (10, 10): [0, 0,")
