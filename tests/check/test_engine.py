"""The engine: properties in order, shrunk failures, hints, and no trace left in the caller's process."""

from __future__ import annotations

import random

import numpy
import pytest
import torch
from hypothesis import strategies as st

from divekit.check import check
from divekit.check.engine import choose_variant, evaluate, pick_hint, run_properties
from divekit.check.model import Check, Concept, Failure, Hint, LimitHit, Property, Unrunnable, Variant
from divekit.check.report import FAIL, NOT_RUN
from divekit.errors import ConfigError

NUMBERS = st.integers(0, 50).map(lambda n: {"n": n})


def double(fn, ex):
    yield Check("f(n)", 2 * ex["n"], fn(ex["n"]))


def concept_of(*properties: Property, hints: tuple[Hint, ...] = ()) -> Concept:
    return Concept("double", "0", "test", (Variant("f(n) -> 2 * n", callable, properties),), hints)


def results(concept: Concept, obj) -> list:
    variant = concept.variants[0]
    return list(run_properties(concept, variant, obj, max_examples=30, seed=0))


def test_the_smallest_failing_input_and_the_hint_that_explains_it():
    hint = Hint("adds instead of doubling", lambda f: f.actual == f.example["n"] + 2)
    other = Hint("never matches", lambda f: False)
    [result] = results(concept_of(Property("doubles", NUMBERS, double), hints=(other, hint)), lambda n: n + 2)
    assert result.status == FAIL
    assert result.failure.input == {"n": "0"}  # shrunk to the smallest n where n + 2 != 2n
    assert result.failure.hint == "adds instead of doubling"
    assert result.failure.difference == "2, expected 0: difference 2"


def test_a_failure_that_appears_only_for_larger_inputs_is_shrunk_to_the_boundary():
    [result] = results(concept_of(Property("doubles", NUMBERS, double)), lambda n: 2 * n if n < 17 else 0)
    assert result.failure.input == {"n": "17"}


def test_the_learners_exception_is_one_line_with_its_place():
    def broken(n):
        return [][n]

    [result] = results(concept_of(Property("doubles", NUMBERS, double)), broken)
    assert result.failure.error.startswith("your code raised IndexError: list index out of range (test_engine.py:")


def test_a_property_needing_a_failed_one_is_not_run_and_unrunnable_blocks_the_rest():
    first = Property("doubles", NUMBERS, double)
    second = Property("doubles again", NUMBERS, double, needs=("doubles",))
    found = results(concept_of(first, second), lambda n: n)
    assert [r.status for r in found] == [FAIL, NOT_RUN]
    assert found[1].reason == "checked once 'doubles' passes"

    def cannot(fn, ex):
        raise Unrunnable("no parameters to match")
        yield

    blocked = concept_of(Property("match", NUMBERS, cannot), Property("doubles", NUMBERS, double))
    found = results(blocked, lambda n: 2 * n)
    assert found[0].failure.error == "cannot run: no parameters to match"
    assert found[1].status == NOT_RUN and "could not run" in found[1].reason


def test_edge_cases_run_when_the_random_examples_pass():
    rare = Property("doubles", st.just({"n": 1}), double, edge_cases=({"n": 1000},))
    [result] = results(concept_of(rare), lambda n: 2 * n if n < 1000 else -1)
    assert result.status == FAIL and result.failure.input == {"n": "1000"}


def test_when_several_hints_fit_the_smallest_input_more_examples_decide():
    # at n = 0 both mistakes give 0; only larger inputs tell "n * n" from "0"
    zero = Hint("returns zero", lambda f: f.actual == 0)
    square = Hint("squares", lambda f: f.actual == f.example["n"] ** 2)
    [result] = results(concept_of(Property("doubles", st.integers(0, 9).map(lambda n: {"n": n}), double),
                                  hints=(zero, square)), lambda n: n * n if n != 2 else 4)  # fmt: skip
    assert result.failure.input == {"n": "1"} and result.failure.hint == "squares"


def test_pick_hint_without_ambiguity_needs_no_more_examples():
    failure = Failure("p", {"n": 1}, "f(n)", 2, 3)
    asked = []
    hint = pick_hint((Hint("three", lambda f: f.actual == 3),), [failure], lambda: asked.append(1) or [])
    assert hint == "three" and not asked


def test_running_out_of_memory_is_a_limit_not_a_failure():
    def hungry(fn, ex):
        raise MemoryError()
        yield

    with pytest.raises(LimitHit) as hit:
        evaluate(Property("p", NUMBERS, hungry), None, {"n": 1}, None)
    assert hit.value.kind == "memory"


def test_a_signature_that_fits_no_variant_is_exit_2():
    from divekit.check import get_concept

    with pytest.raises(ConfigError, match=r"one_arg does not fit corr2d: expected corr2d\(X, K\) -> Y.*a function "
                                          r"one_arg\(X\)") as err:  # fmt: skip
        def one_arg(X):
            return X

        choose_variant(get_concept("corr2d"), one_arg, "one_arg")
    assert err.value.exit_code == 2


def test_check_leaves_the_callers_random_state_dtype_and_threads_alone():
    random.seed(5)
    numpy.random.seed(5)
    torch.manual_seed(5)
    threads = torch.get_num_threads()
    expected = (random.random(), numpy.random.rand(), torch.rand(1))
    random.seed(5)
    numpy.random.seed(5)
    torch.manual_seed(5)
    report = check(torch.nn.RNN, "rnn", max_examples=5)
    assert report.passed
    assert (random.random(), numpy.random.rand(), torch.rand(1)) == expected
    assert torch.get_default_dtype() == torch.float32 and torch.get_num_threads() == threads


def test_the_same_seed_gives_the_same_report():
    def flipped(X, K):
        from divekit.nn.conv import corr2d

        return corr2d(X, K.flip(0, 1))

    first, second = check(flipped, "corr2d", seed=3), check(flipped, "corr2d", seed=3)
    assert first.to_dict() | {"seconds": 0} == second.to_dict() | {"seconds": 0}


NOTEBOOK_CELL = '''
import torch
from torch import nn

class MySequential(nn.Module):
    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def forward(self, X):
        for module in self._modules.values():
            X = module(X)
        return X
'''


def test_a_class_written_in_a_notebook_is_checked(monkeypatch):
    import sys
    import types

    kernel_main = types.ModuleType("__main__")  # a Jupyter kernel's __main__: no __file__, so no source file
    monkeypatch.setitem(sys.modules, "__main__", kernel_main)
    exec(compile(NOTEBOOK_CELL, "<cell>", "exec"), kernel_main.__dict__)
    assert check(kernel_main.MySequential, "sequential", max_examples=5).passed
