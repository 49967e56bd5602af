import errno
import os
import pickle

import pytest
import torch

from divekit import io
from divekit.errors import CheckpointError
from divekit.nn import MLP


def test_tensor_list_and_dict_round_trip(tmp_path):
    x, y = torch.arange(4), torch.zeros(4)
    io.save(x, tmp_path / "x-file")
    assert torch.equal(io.load(tmp_path / "x-file"), x)
    io.save([x, y], tmp_path / "x-files")
    x2, y2 = io.load(tmp_path / "x-files")
    assert torch.equal(x2, x) and torch.equal(y2, y)
    io.save({"x": x, "y": y}, tmp_path / "mydict")
    assert set(io.load(tmp_path / "mydict")) == {"x", "y"}


def test_clone_loaded_from_disk_gives_identical_outputs(tmp_path):
    net = MLP()
    io.save(net.state_dict(), tmp_path / "mlp.params")
    clone = MLP()
    clone.load_state_dict(io.load(tmp_path / "mlp.params"))
    X = torch.randn(2, 20)
    assert torch.equal(clone(X), net(X))


def test_crash_during_save_leaves_previous_file_loadable(tmp_path):
    path = tmp_path / "ckpt.pt"
    io.save({"w": torch.ones(3)}, path)

    def crashing_writer(obj, handle):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process dies mid-write

    with pytest.raises(KeyboardInterrupt):
        io.save({"w": torch.zeros(3)}, path, writer=crashing_writer)
    assert torch.equal(io.load(path)["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temporary file left behind


def test_full_disk_is_reported_and_previous_file_kept(tmp_path):
    path = tmp_path / "ckpt.pt"
    io.save(torch.ones(2), path)

    def full_disk(obj, handle):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(io.DiskWriteError, match="no space left on device.*intact"):
        io.save(torch.zeros(2), path, writer=full_disk)
    assert torch.equal(io.load(path), torch.ones(2))
    assert os.listdir(tmp_path) == ["ckpt.pt"]


class Payload:
    """An object whose unpickling would run a command."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_payload_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": torch.ones(1), "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused to load .*pickled objects"):
        io.load(path)


def test_raw_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError):
        io.load(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_empty_garbage_and_truncated_files_are_reported(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is None:  # a real checkpoint cut in half
        io.save({"w": torch.randn(100, 100)}, path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="empty|truncated|not a PyTorch file"):
        io.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        io.load(tmp_path / "nope.pt")


def test_atomic_text_and_json(tmp_path):
    io.atomic_write_json(tmp_path / "a.json", {"k": [1, 2]})
    io.atomic_write_text(tmp_path / "b.txt", "héllo\n")
    assert (tmp_path / "a.json").read_text().startswith("{")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
