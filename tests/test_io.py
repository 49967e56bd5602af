import errno
import gzip
import io as io_module
import os
import pickle
import signal
import socket
import stat
import struct
import subprocess
import sys

import pytest
import torch

from divekit import io
from divekit.errors import CheckpointError, ConfigError, DataError, DivekitError
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


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"), (b"not a checkpoint at all", "not a PyTorch or safetensors file .it looks like a text file"),
    (None, "zip archive is truncated or damaged")])  # fmt: skip
def test_empty_garbage_and_truncated_files_are_reported(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if content is None:  # a real checkpoint cut in half
        io.save({"w": torch.randn(100, 100)}, path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        io.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt does not exist"):
        io.load(tmp_path / "nope.pt")


def test_atomic_text_and_json(tmp_path):
    io.atomic_write_json(tmp_path / "a.json", {"k": [1, 2]})
    io.atomic_write_text(tmp_path / "b.txt", "héllo\n")
    assert (tmp_path / "a.json").read_text().startswith("{")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"


# ------------------------------------------------------------ OS errors and modes of writes
@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only file system (a tmpfs remounted read-only; even root cannot write there)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    (mount / "checkpoints").mkdir()
    (mount / "checkpoints" / "last.pt").write_bytes(b"previous")
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("where", ["file in the way", "under a file"])
def test_a_file_where_the_folder_should_be_is_one_line(tmp_path, where):
    (tmp_path / "taken").write_text("a file")
    target = tmp_path / "taken" / "a.json" if where == "file in the way" else tmp_path / "taken" / "sub" / "a.json"
    with pytest.raises(io.DiskWriteError) as err:
        io.atomic_write_json(target, {"k": 1})
    message = str(err.value)
    assert str(target.parent) in message and ("a file of that name exists" in message or "Not a directory" in message)
    assert (tmp_path / "taken").read_text() == "a file"


def test_read_only_folder_is_one_line_and_nothing_is_lost(read_only_folder):
    target = read_only_folder / "checkpoints" / "last.pt"  # the temporary file cannot be created
    with pytest.raises(io.DiskWriteError, match=f"could not write {target}: Read-only file system.*intact"):
        io.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"previous"
    with pytest.raises(io.DiskWriteError, match=f"cannot create the folder {read_only_folder / 'new'}: Read-only"):
        io.atomic_write_bytes(read_only_folder / "new" / "x", b"new")


@pytest.mark.parametrize("failure", [errno.EACCES, errno.EROFS, errno.EMFILE])
def test_creating_the_temporary_file_fails_with_one_line(tmp_path, monkeypatch, failure):
    """The same without a mount: the temporary file's creation fails (once run before the error handling)."""
    (tmp_path / "a.txt").write_text("previous")
    real_open = os.open

    def failing_open(path, flags, *args):
        if str(path).endswith(".tmp"):
            raise OSError(failure, os.strerror(failure))
        return real_open(path, flags, *args)

    monkeypatch.setattr(io.os, "open", failing_open)
    with pytest.raises(io.DiskWriteError, match=f"could not write {tmp_path / 'a.txt'}: {os.strerror(failure)}"):
        io.atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "previous" and os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        io.atomic_write_text(tmp_path / "a.txt", "x")
        io.save(torch.ones(1), tmp_path / "b.pt")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_stale_temporaries_of_killed_writes_are_removed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / ".metrics.json.a1b2c3d4.tmp", tmp_path / "checkpoints" / ".last.pt.k3j_x9q2.tmp"]
    kept = [tmp_path / "metrics.json", tmp_path / "notes.tmp", tmp_path / ".lock", tmp_path / "checkpoints" / "last.pt"]
    for path in stale + kept:
        path.write_text("x")
    (tmp_path / ".folder.tmp").mkdir()  # a folder of that name is not a temporary file
    assert io.remove_stale_temporaries(tmp_path) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale) and (tmp_path / ".folder.tmp").is_dir()
    assert io.remove_stale_temporaries(tmp_path / "missing") == []


def test_a_killed_write_leaves_a_temporary_file_that_is_then_removed(tmp_path):
    """kill -9 mid-write (a real process): the target is intact, and the leftover is cleared on the next start."""
    io.atomic_write_text(tmp_path / "a.txt", "previous")
    code = ("import os, signal; from divekit import io\n"
            "with io.atomic_open(%r, 'w') as h:\n    h.write('half'); h.flush(); os.kill(os.getpid(), signal.SIGKILL)"
            % str(tmp_path / "a.txt"))  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    leftovers = [p for p in tmp_path.iterdir() if p.name != "a.txt"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".a.txt.") and leftovers[0].suffix == ".tmp"
    assert (tmp_path / "a.txt").read_text() == "previous"
    assert io.remove_stale_temporaries(tmp_path) == leftovers and os.listdir(tmp_path) == ["a.txt"]


# ------------------------------------------------------------ bounded reads
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("special, kind", [("/dev/zero", "a character device"), ("/dev/null", "a character device"),
                                           ("fifo", "a named pipe"), ("folder", "a folder"), ("socket", "a socket")])
def test_only_regular_files_are_read_and_nothing_hangs(tmp_path, fifo, special, kind):
    if special == "fifo":
        special = fifo  # no writer: a plain open() would block forever
    elif special == "folder":
        special = tmp_path
    elif special == "socket":
        special = tmp_path / "sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(special))
    for read in (lambda: io.read_text(special, limit_bytes=100, what="config file"),
                 lambda: list(io.read_lines(special, what="prompts file")), lambda: io.load(special)):
        with pytest.raises(DivekitError, match=f"{special} is {kind}"):
            read()


def test_read_text_has_a_size_limit_and_reads_no_more(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_bytes(b"{}" + b" " * 200)
    assert io.read_text(path, limit_bytes=202, what="config file") == "{}" + " " * 200
    with pytest.raises(DataError, match="config file .* larger than the 201 bytes limit"):
        io.read_text(path, limit_bytes=201, what="config file")
    path.write_bytes(b"x" * 2000)
    with pytest.raises(ConfigError, match="larger than the 1 KiB limit"):
        io.read_text(path, limit_bytes=1024, what="config file", error=ConfigError)
    calls = []
    real_open = io.open_regular

    def recording(*args, **kwargs):
        handle = real_open(*args, **kwargs)
        real_read = handle.read
        handle.read = lambda n=-1: calls.append(n) or real_read(n)
        return handle

    monkeypatch.setattr(io, "open_regular", recording)
    with pytest.raises(ConfigError):
        io.read_text(path, limit_bytes=1024, what="config file", error=ConfigError)
    assert calls == [1025]  # never the whole file


@pytest.mark.parametrize("content, where", [(b"ok\n\xff", 3), ("é".encode() + b"\xe9x", 2), (b"ab\xc3", None)])
def test_read_text_and_lines_name_the_bad_byte(tmp_path, content, where):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    message = f"bad byte at offset {where}" if where is not None else "ends inside a character"
    with pytest.raises(DataError, match=message):
        list(io.read_lines(path, what="input file"))
    if where is not None:
        with pytest.raises(DataError, match=message):
            io.read_text(path, limit_bytes=100, what="input file")


def test_read_lines_is_lazy_bounded_and_splits_like_text_files(tmp_path):
    path = tmp_path / "t.txt"
    text = "\ufeffone\r\ntwo\rthree\n\nfour\u2028five\x0csix"
    path.write_bytes(text.encode("utf-8"))
    with open(path, encoding="utf-8-sig") as handle:  # universal newlines: \n, \r\n and \r only
        expected = [line.rstrip("\r\n") for line in handle]
    assert list(io.read_lines(path, what="input file", max_line_chars=20)) == expected
    path.write_bytes(b"short\n" + b"x" * 10_000 + b"\nnever read\n")
    lines = io.read_lines(path, what="prompts file", max_line_chars=100)
    assert next(lines) == "short"
    with pytest.raises(DataError, match="prompts file .*, line 2: longer than 100 characters"):
        next(lines)


def test_a_multibyte_character_cut_by_a_piece_boundary_is_kept_whole(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(("aé" * 50 + "\n" + "日本" * 40).encode("utf-8"))
    pieces = list(io.read_line_pieces(path, piece_bytes=7, what="corpus"))
    assert all(len(text.encode()) <= 7 + 3 for text, _ in pieces)  # + the bytes of a character cut short
    assert "".join(t for t, _ in pieces) == "aé" * 50 + "日本" * 40
    ends = [end for _, end in pieces]
    assert ends.count(True) == 2 and ends[-1]  # the end of line 1, and the file's end (no newline there)


# ------------------------------------------------------------ weights formats
def _safetensors(tmp_path, name="w.safetensors"):
    from safetensors.torch import save_file

    save_file({"w": torch.arange(6.0)}, tmp_path / name)
    return (tmp_path / name).read_bytes()


def test_safetensors_is_recognised_by_content_whatever_its_name(tmp_path):
    data = _safetensors(tmp_path)
    (tmp_path / "best.pt").write_bytes(data)
    for name in ("w.safetensors", "best.pt"):
        assert torch.equal(io.load(tmp_path / name)["w"], torch.arange(6.0))


@pytest.mark.parametrize("name", ["w.safetensors", "best.pt"])
@pytest.mark.parametrize("corrupt, message", [
    (lambda b: struct.pack("<Q", 10**15) + b[8:], "header claims 1,000,000,000,000,000 bytes"),
    (lambda b: struct.pack("<Q", 200_000_000) + b[8:] + b"x" * 64, "header claims 200,000,000 bytes"),
    (lambda b: b[:-5], "corrupt safetensors file"),
    (lambda b: b[:9] + b"\x00" * (len(b) - 9), "corrupt safetensors file"),
    (lambda b: b[:9] + b"]" * (len(b) - 9), "corrupt safetensors file"),
])  # fmt: skip
def test_corrupt_safetensors_is_one_line_about_safetensors(tmp_path, name, corrupt, message):
    """Huge or wrong header, truncated tensors: never a SafetensorError, never 'pickled objects'."""
    path = tmp_path / name
    path.write_bytes(corrupt(_safetensors(tmp_path, "good.safetensors")))
    with pytest.raises(CheckpointError) as err:
        io.load(path)
    assert message in str(err.value) and "pickled" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content, message", [
    (lambda: _zip_checkpoint()[:-30], "zip archive is truncated or damaged"),
    (lambda: _zip_checkpoint()[:100], "zip archive is truncated or damaged"),
    (lambda: _legacy_checkpoint()[:40], "pickled data is truncated or damaged"),
    (lambda: pickle.dumps({"w": [1.0]}), "a Python pickle, not PyTorch's format"),
    (lambda: gzip.compress(b"x" * 100), "looks like a gzip file"),
    (lambda: b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "HDF5"),
    (lambda: b"\x93NUMPY\x01\x00" + b" " * 100, "NumPy"),
    (lambda: bytes(range(256)), "looks like an unknown format"),
])  # fmt: skip
def test_every_weights_format_error_names_the_real_problem(tmp_path, content, message):
    path = tmp_path / "best.pt"
    path.write_bytes(content())
    with pytest.raises(CheckpointError) as err:
        io.load(path)
    assert message in str(err.value) and "pickled objects" not in str(err.value), str(err.value)


def _zip_checkpoint() -> bytes:
    buffer = io_module.BytesIO()
    torch.save({"w": torch.randn(50, 50)}, buffer)
    return buffer.getvalue()


def _legacy_checkpoint() -> bytes:
    buffer = io_module.BytesIO()
    torch.save({"w": torch.randn(50, 50)}, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def test_legacy_format_still_loads(tmp_path):
    (tmp_path / "old.pt").write_bytes(_legacy_checkpoint())
    assert io.load(tmp_path / "old.pt")["w"].shape == (50, 50)


@pytest.mark.parametrize("piece", [1, 2, 3, 5])
def test_a_crlf_cut_by_a_piece_end_is_one_line_end(tmp_path, piece):
    """Found by fuzzing: with 1-byte pieces, b"\\r\\n" came back as two lines."""
    path = tmp_path / "t.txt"
    path.write_bytes(b"ab\r\ncd\r\n\r\ne")
    pieces = list(io.read_line_pieces(path, piece_bytes=piece, what="input file"))
    assert "".join(t for t, _ in pieces) == "abcde" and [end for _, end in pieces].count(True) == 4
    assert list(io.read_lines(path, what="input file", max_line_chars=2)) == ["ab", "cd", "", "e"]
    path.write_bytes(b"\r\n")
    assert list(io.read_lines(path, what="input file", max_line_chars=1)) == [""]
