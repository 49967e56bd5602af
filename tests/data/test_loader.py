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


def test_bad_arguments():
    with pytest.raises(ConfigError, match="at least 1"):
        TensorBatches((torch.arange(3),), batch_size=0)
    with pytest.raises(ValueError, match="differ in length"):
        TensorBatches((torch.arange(3), torch.arange(4)), batch_size=2)
