"""Batches from anything, replayable per epoch, and sharded across processes in one place."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from divekit.data import TensorBatches
from divekit.data.batching import (BatchSeed, IterableBatches, Rows, ShardedBatches, as_epoch_batches, iterate_shard,
                                   shard_batch, take_rows, to_device)  # fmt: skip
from divekit.errors import ConfigError


def ids(batches):
    return [b[0].tolist() for b in batches]


def test_processes_split_each_global_batch_into_contiguous_shares():
    X = torch.arange(16)
    single = TensorBatches((X,), batch_size=8, shuffle=True, seed=3)
    ranks = [ShardedBatches(TensorBatches((X,), batch_size=8, shuffle=True, seed=3), rank=r, world_size=2)
             for r in (0, 1)]  # fmt: skip
    for a, b, whole in zip(ids(ranks[0].iter_from(0)), ids(ranks[1].iter_from(0)), ids(single)):
        assert a + b == whole and len(a) == len(b) == 4
    assert len(ranks[0]) == len(ranks[1]) == len(single)


def test_a_ragged_final_batch_is_shared_and_one_too_small_to_share_is_dropped():
    ranks = [ShardedBatches(TensorBatches((torch.arange(11),), batch_size=4, shuffle=True), rank=r, world_size=2)
             for r in (0, 1)]  # fmt: skip
    assert [len(b) for b in ids(ranks[0].iter_from(0))] == [2, 2, 2] and [len(b) for b in ids(ranks[1].iter_from(0))] == [2, 2, 1]
    three = [ShardedBatches(TensorBatches((torch.arange(9),), batch_size=4, shuffle=True), rank=r, world_size=3)
             for r in range(3)]  # fmt: skip
    assert all(len(t) == 2 and len(ids(t.iter_from(0))) == 2 for t in three)  # the final batch of 1 cannot feed 3


def test_a_batch_smaller_than_the_processes_is_refused():
    with pytest.raises(ConfigError, match="data.batch_size 3 is smaller than the 4 processes"):
        ShardedBatches(TensorBatches((torch.arange(8),), batch_size=3), rank=0, world_size=4)


def test_evaluation_shares_are_disjoint_and_complete_and_empty_shares_are_skipped():
    batches = TensorBatches((torch.arange(11),), batch_size=4)
    shares = [list(iterate_shard(batches, rank=r, world_size=3)) for r in range(3)]
    seen = sorted(i for share in shares for batch in share for i in batch[0].tolist())
    assert seen == list(range(11))
    assert all(len(b[0]) > 0 for share in shares for b in share)


def test_shard_batch_cuts_tensors_rows_and_seeds_alike_and_leaves_the_rest():
    batch = (torch.arange(10).view(5, 2), torch.tensor(7), Rows("abcde"), BatchSeed(3, total=5), {"y": torch.arange(5)}, "x")
    parts = [shard_batch(batch, r, 2) for r in (0, 1)]
    assert torch.equal(torch.cat([p[0] for p in parts]), batch[0]) and parts[1][1] == 7
    assert [list(p[2]) for p in parts] == [list("abc"), list("de")]
    assert [p[3].rows for p in parts] == [slice(0, 3), slice(3, 5)] and parts[1][3].total == 5
    assert torch.equal(parts[1][4]["y"], torch.tensor([3, 4])) and parts[0][5] == "x"
    assert take_rows(batch, slice(0, 2))[0].shape == (2, 2)


def test_a_dataloader_is_replayed_per_epoch_and_leaves_the_training_rng_alone():
    data = TensorDataset(torch.arange(20))
    batches = as_epoch_batches(DataLoader(data, batch_size=4, shuffle=True), seed=1)
    assert isinstance(batches, IterableBatches) and len(batches) == 5
    batches.set_epoch(2)
    before = torch.get_rng_state()
    first = ids(batches.iter_from(0))
    assert torch.equal(torch.get_rng_state(), before)  # the shuffling drew from its own seeded stream
    assert ids(batches.iter_from(3)) == first[3:]
    batches.set_epoch(3)
    assert ids(batches.iter_from(0)) != first


def test_a_loader_with_its_own_generator_replays_from_the_epoch_start_state():
    loader = DataLoader(TensorDataset(torch.arange(20)), batch_size=4, shuffle=True,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    batches = as_epoch_batches(loader, seed=0)
    batches.set_epoch(0)
    first = ids(batches.iter_from(0))
    batches.set_epoch(1)
    second = ids(batches.iter_from(0))
    state = batches.state_dict()
    fresh = as_epoch_batches(DataLoader(TensorDataset(torch.arange(20)), batch_size=4, shuffle=True,
                                        generator=torch.Generator().manual_seed(99)), seed=0)  # fmt: skip
    fresh.load_state_dict(state)
    fresh.set_epoch(1)
    assert ids(fresh.iter_from(2)) == second[2:] and second != first


def test_lists_and_callables_work_and_one_shot_iterators_are_refused():
    listed = as_epoch_batches([(torch.zeros(2),), (torch.ones(2),)])
    assert len(listed) == 2 and len(list(listed.iter_from(1))) == 1
    made = as_epoch_batches(lambda: iter([(torch.zeros(3),)]))
    assert [len(b[0]) for b in made.iter_from(0)] == [3] and [len(b[0]) for b in made.iter_from(0)] == [3]
    with pytest.raises(ConfigError, match="one-shot iterator"):
        as_epoch_batches(iter([(torch.zeros(2),)]))
    with pytest.raises(ConfigError, match="cannot iterate batches from a int"):
        as_epoch_batches(3)


def test_to_device_moves_nested_tensors_and_keeps_rows():
    batch = to_device(({"x": torch.zeros(1, 2, 3, 3)}, Rows(["r"]), 5), torch.device("cpu"), channels_last=True)
    assert batch[0]["x"].is_contiguous(memory_format=torch.channels_last) and isinstance(batch[1], Rows)
