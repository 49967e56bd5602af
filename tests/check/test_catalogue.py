"""The concept registry, and the shape of the checker's own test suite (every concept has its wrong submissions)."""

from __future__ import annotations

import collections

import pytest

from divekit.check import concepts, get_concept
from divekit.check.catalogue import infer_concept
from divekit.errors import ConfigError
from tests.check.catalogue import (test_attention, test_basics, test_conv, test_metrics, test_multihead, test_norm,
                                   test_pooling, test_recurrent, test_text)  # fmt: skip

ISSUE_CONCEPTS = {
    "corr2d", "corr2d-multi-in", "corr2d-multi-in-out", "conv2d", "pool2d", "batch-norm", "linear", "sequential",
    "rnn", "gru", "lstm", "rnn-cell", "seq-data-iter-random", "seq-data-iter-sequential", "vocab", "masked-softmax",
    "additive-attention", "dot-product-attention", "multi-head-attention", "positional-encoding", "bleu",
    "grad-clipping", "perplexity",
}  # fmt: skip
ALL_CASES = [case for module in (test_attention, test_basics, test_conv, test_metrics, test_multihead, test_norm,
                                 test_pooling, test_recurrent, test_text) for case in module.CASES]  # fmt: skip


def test_every_concept_of_the_issue_is_there_with_a_section_and_signature():
    found = {c.name: c for c in concepts()}
    assert set(found) == ISSUE_CONCEPTS
    for concept in found.values():
        assert concept.section[0].isdigit() and concept.title and concept.signatures
        assert len(concept.hints) >= 3, concept.name


def test_concepts_are_listed_in_the_notes_order():
    sections = [tuple(map(int, c.section.split("."))) for c in concepts()]
    assert sections == sorted(sections)


@pytest.mark.parametrize("concept", sorted(ISSUE_CONCEPTS))
def test_every_concept_has_three_wrong_submissions_and_two_right_ones(concept):
    cases = [case for case in ALL_CASES if case.concept == concept]
    wrong = [case for case in cases if case.hint is not None]
    assert len(wrong) >= 3 and all(case.mistake for case in wrong)
    assert len(cases) - len(wrong) >= 2


def test_each_wrong_submission_expects_its_own_hint():
    per_concept = collections.defaultdict(list)
    for case in ALL_CASES:
        if case.hint is not None:
            per_concept[case.concept].append(case.hint)
    assert all(len(set(hints)) >= 3 for hints in per_concept.values())


def test_unknown_concept_suggests_the_closest():
    with pytest.raises(ConfigError, match="unknown concept 'corr2'. Did you mean 'corr2d'"):
        get_concept("corr2")


@pytest.mark.parametrize(("name", "concept"), [
    ("corr2d_multi_in", "corr2d-multi-in"), ("BatchNorm", "batch-norm"), ("batch_norm", "batch-norm"),
    ("MyLinear", "linear"), ("seq_data_iter_random", "seq-data-iter-random"), ("masked_softmax", "masked-softmax"),
    ("MultiHeadAttention", "multi-head-attention"), ("gru", "gru"), ("grad_clipping", "grad-clipping"),
])  # fmt: skip
def test_concept_is_inferred_from_the_object_name(name, concept):
    assert infer_concept(name).name == concept


def test_a_name_that_implies_no_concept_asks_for_one():
    with pytest.raises(ConfigError, match="cannot tell which concept 'my_layer' implements from its name; say which"):
        infer_concept("my_layer")
