import pytest
import torch

from divekit.data import TensorBatches
from divekit.errors import ConfigError


def ids(batches):
    return [b[0].tolist() for b in batches]


def test_every_example_once_per_epoch_in_a_new_order():
    X = torch.arange(10)
    loader = TensorBatches((X, X * 2), batch_size=4, shuffle=True, seed=1)
    first = ids(loader)
    assert sorted(sum(first, [])) == list(range(10)) and [len(b) for b in first] == [4, 4, 2]
    assert len(loader) == 3
    loader.set_epoch(1)
    assert ids(loader) != first
    loader.set_epoch(0)
    assert ids(loader) == first  # a pure function of (seed, epoch)
    assert all(torch.equal(y, x * 2) for x, y in loader)


def test_resume_from_a_batch_replays_the_rest_exactly():
    loader = TensorBatches((torch.arange(20),), batch_size=3, shuffle=True, seed=5)
    loader.set_epoch(4)
    assert ids(loader.iter_from(2)) == ids(loader)[2:]


def test_drop_last_and_sequential_order():
    loader = TensorBatches((torch.arange(10),), batch_size=4, drop_last=True)
    assert ids(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]] and len(loader) == 2


def test_ranks_split_each_global_batch():
    X = torch.arange(16)
    single = TensorBatches((X,), batch_size=8, shuffle=True, seed=3)
    ranks = [TensorBatches((X,), batch_size=8, shuffle=True, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for a, b, whole in zip(ids(ranks[0]), ids(ranks[1]), ids(single)):
        assert a + b == whole and len(a) == len(b) == 4
    assert len(ranks[0]) == len(ranks[1]) == len(single)


def test_ranks_split_a_ragged_final_batch_and_drop_one_too_small_to_share():
    X = torch.arange(11)
    ranks = [TensorBatches((X,), batch_size=4, shuffle=True, rank=r, world_size=2) for r in (0, 1)]
    assert [len(b) for b in ids(ranks[0])] == [2, 2, 2] and [len(b) for b in ids(ranks[1])] == [2, 2, 1]
    three = [TensorBatches((torch.arange(9),), batch_size=4, shuffle=True, rank=r, world_size=3) for r in range(3)]
    assert all(len(t) == 2 and len(ids(t)) == 2 for t in three)  # the final batch of 1 cannot feed 3 ranks


def test_evaluation_shares_are_disjoint_and_complete():
    X = torch.arange(11)
    shares = [TensorBatches((X,), batch_size=4, rank=r, world_size=3) for r in range(3)]
    seen = [i for s in shares for batch in ids(s) for i in batch]
    assert sorted(seen) == list(range(11))
    assert [len(s) for s in shares] == [len(ids(s)) for s in shares]


def test_bad_arguments():
    with pytest.raises(ConfigError, match="at least 1"):
        TensorBatches((torch.arange(3),), batch_size=0)
    with pytest.raises(ConfigError, match="smaller than the 4 processes"):
        TensorBatches((torch.arange(3),), batch_size=3, shuffle=True, world_size=4)
    with pytest.raises(ValueError, match="differ in length"):
        TensorBatches((torch.arange(3), torch.arange(4)), batch_size=2)
