"""Random sampling and sequential partitioning of a token stream (notes §6.3.2)."""

from __future__ import annotations

import pytest
import torch

from divekit.data.batching import Replay, ShardedBatches, iterate_shard
from divekit.data.sampling import RandomSequenceBatches, SequentialBatches, evaluation_batches
from divekit.errors import ConfigError, DataError

CORPUS = torch.arange(1000)  # token id == position, so every batch tells where it was cut
SAMPLERS = (RandomSequenceBatches, SequentialBatches)


def _epoch(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_targets_are_inputs_shifted_by_one(cls):
    for X, Y in cls(CORPUS, batch_size=4, num_steps=7, seed=1):
        assert X.shape == Y.shape == (4, 7)
        assert torch.equal(Y, X + 1)
        assert torch.equal(X[:, 1:], X[:, :-1] + 1)  # each row is a contiguous window


def test_offset_covers_exactly_0_to_num_steps_minus_1():
    num_steps = 5
    sampler = SequentialBatches(CORPUS, batch_size=2, num_steps=num_steps, seed=3)
    first_tokens = {int(_epoch(sampler, e)[0][0][0, 0]) for e in range(200)}  # row 0 starts at the offset
    assert first_tokens == set(range(num_steps))
    draws = {RandomSequenceBatches(CORPUS, batch_size=2, num_steps=num_steps)._offset(torch.Generator().manual_seed(s))
             for s in range(200)}
    assert draws == set(range(num_steps))  # never num_steps itself, which would only waste a subsequence


@pytest.mark.parametrize("cls", SAMPLERS)
def test_same_number_of_batches_every_epoch_and_deterministic(cls):
    sampler = cls(CORPUS, batch_size=8, num_steps=10, seed=0)
    lengths = {len(_epoch(sampler, e)) for e in range(30)}
    assert lengths == {len(sampler)}
    assert len(sampler) == (1000 - 10) // 10 // 8 if cls is RandomSequenceBatches else len(sampler) == (990 // 8) // 10
    again = cls(CORPUS, batch_size=8, num_steps=10, seed=0)
    for (a, _), (b, _) in zip(_epoch(sampler, 4), _epoch(again, 4)):
        assert torch.equal(a, b)


def test_random_subsequences_do_not_overlap_within_an_epoch():
    sampler = RandomSequenceBatches(CORPUS, batch_size=4, num_steps=6, seed=2)
    starts = torch.cat([X[:, 0] for X, _ in _epoch(sampler, 0)])
    assert len(set(starts.tolist())) == len(starts)
    assert len(set((starts % 6).tolist())) == 1  # all on the same grid
    first = torch.cat([X[:, 0] for X, _ in _epoch(sampler, 1)])
    assert not torch.equal(first, starts)  # a new order (and offset) each epoch


def test_sequential_batches_continue_each_other_row_by_row():
    sampler = SequentialBatches(CORPUS, batch_size=4, num_steps=6, seed=5)
    batches = _epoch(sampler, 0)
    for (X1, _), (X2, _) in zip(batches, batches[1:]):
        assert torch.equal(X2[:, 0], X1[:, -1] + 1)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_iter_from_skips_exactly_the_first_batches(cls):
    sampler = cls(CORPUS, batch_size=4, num_steps=6, seed=5)
    sampler.set_epoch(2)
    full = list(sampler)
    rest = list(sampler.iter_from(3))
    assert len(rest) == len(full) - 3
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(full[3:], rest))


@pytest.mark.parametrize("cls", SAMPLERS)
def test_sharded_processes_take_disjoint_row_slices_whose_state_stays_their_own(cls):
    one = cls(CORPUS, batch_size=6, num_steps=5, seed=4)
    ranks = [ShardedBatches(cls(CORPUS, batch_size=6, num_steps=5, seed=4), rank=r, world_size=3) for r in range(3)]
    for sampler in (one, *ranks):
        sampler.set_epoch(7)
    assert {len(r) for r in ranks} == {len(one)}
    for global_batch, *local in zip(one.iter_from(0), *(r.iter_from(0) for r in ranks)):
        assert torch.equal(torch.cat([X for X, _ in local]), global_batch[0])
    # sequentially, each rank's rows still continue each other: its hidden state stays its own
    if cls is SequentialBatches:
        batches = list(ranks[1].iter_from(0))
        assert torch.equal(batches[1][0][:, 0], batches[0][0][:, -1] + 1)


def test_bad_sizes_are_clear_errors():
    with pytest.raises(DataError, match="gives no batch"):
        SequentialBatches(torch.arange(50), batch_size=8, num_steps=10)
    with pytest.raises(ConfigError, match="at least 1"):
        RandomSequenceBatches(CORPUS, batch_size=0, num_steps=3)


def test_evaluation_predicts_every_token_once_across_processes():
    corpus = torch.arange(103)
    targets = [Y for Y in (y for _, y in evaluation_batches(corpus, batch_size=4, num_steps=10))]
    seen = torch.cat([Y.flatten() for Y in targets])
    assert sorted(seen.tolist()) == list(range(1, 101))  # 102 targets, 100 fit 4 equal rows
    batches = Replay(lambda: evaluation_batches(corpus, batch_size=4, num_steps=10))
    shared = [y for r in range(3) for _, y in iterate_shard(batches, rank=r, world_size=3)]
    assert sorted(torch.cat([Y.flatten() for Y in shared]).tolist()) == sorted(seen.tolist())
    assert list(evaluation_batches(torch.arange(1), batch_size=4, num_steps=3)) == []
