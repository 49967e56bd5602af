"""CIFAR-10: Python-2 pickle batches read safely from folders, archives and a (local) download."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from divekit.data import load_dataset
from divekit.data import cifar
from divekit.data.download import RemoteFile
from divekit.errors import DataError

PER_BATCH = 3


def py2_pickle(obj: object) -> bytes:
    """Serialise dicts, lists, str, int and uint8 arrays as Python 2's cPickle (protocol 2) wrote them.

    The official batches look like this: str keys and raw array bytes as
    8-bit strings, the array rebuilt by ``numpy.core.multiarray._reconstruct``.
    """
    out = bytearray(b"\x80\x02")

    def string(raw: bytes) -> None:  # a Python 2 str
        out.extend(b"U" + bytes([len(raw)]) + raw if len(raw) < 256 else b"T" + struct.pack("<I", len(raw)) + raw)

    def write(x: object) -> None:
        if isinstance(x, dict):
            out.extend(b"}(")
            for key, value in x.items():
                write(key), write(value)
            out.extend(b"u")
        elif isinstance(x, (list, tuple)):
            out.extend(b"](" if isinstance(x, list) else b"(")
            for value in x:
                write(value)
            out.extend(b"e" if isinstance(x, list) else b"t")
        elif isinstance(x, str):
            string(x.encode("latin1"))
        elif isinstance(x, int):
            out.extend(b"J" + struct.pack("<i", x))
        elif isinstance(x, np.ndarray):
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85")
            string(b"b")
            out.extend(b"\x87R(K\x01")  # array = _reconstruct(ndarray, (0,), 'b'); state = (1, shape, dtype, False, raw)
            write(tuple(x.shape))
            out.extend(b"cnumpy\ndtype\n")
            string(b"u1")
            out.extend(b"K\x00K\x01\x87R(K\x03")  # dtype('u1', 0, 1); dtype state (3, '|', None, None, None, -1, -1, 0)
            string(b"|")
            out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
            string(x.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(x))

    write(obj)
    return bytes(out + b".")


def fake_batch(index: int, n: int = PER_BATCH) -> tuple[bytes, np.ndarray, list[int]]:
    rng = np.random.default_rng(index)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    blob = py2_pickle({"batch_label": f"batch {index}", "labels": labels, "data": data,
                       "filenames": [f"img_{index}_{i}.png" for i in range(n)]})  # fmt: skip
    return blob, data, labels


def write_batches(folder: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i, name in enumerate((*cifar.TRAIN_BATCHES, cifar.TEST_BATCH)):
        blob, data, labels = fake_batch(i)
        (folder / name).write_bytes(blob)
        truth[name] = (data, labels)
    return truth


def write_archive(path: Path, batches: Path) -> None:
    with tarfile.open(path, "w:gz") as archive:
        archive.add(batches, arcname=cifar.BATCH_FOLDER)


def check(data, truth) -> None:
    train_rows = np.concatenate([truth[n][0] for n in cifar.TRAIN_BATCHES])
    assert data.train.images.shape == (5 * PER_BATCH, 3, 32, 32) and data.test.images.shape == (PER_BATCH, 3, 32, 32)
    assert np.array_equal(data.train.images.numpy().reshape(-1, 3072), train_rows)
    assert data.train.labels.tolist() == sum((truth[n][1] for n in cifar.TRAIN_BATCHES), [])
    assert data.test.labels.tolist() == truth[cifar.TEST_BATCH][1]
    assert data.class_names[0] == "airplane" and data.num_classes == 10 and data.in_channels == 3


def test_rows_are_red_then_green_then_blue_planes():
    row = np.arange(3072, dtype=np.int64).astype(np.uint8)[None]
    images, _ = cifar.parse_batch(py2_pickle({"data": row, "labels": [3]}), source="x")
    assert images.shape == (1, 3, 32, 32)
    assert images[0, 0, 0, 1] == 1 and images[0, 0, 1, 0] == 32 and images[0, 1, 0, 0] == 1024 % 256


@pytest.mark.parametrize("layout", ["batches", "extracted-folder", "archive"])
def test_loads_every_folder_layout(tmp_path, layout):
    truth = write_batches(tmp_path / "src" / cifar.BATCH_FOLDER)
    if layout == "batches":
        root = tmp_path / "src" / cifar.BATCH_FOLDER
    elif layout == "extracted-folder":
        root = tmp_path / "src"
    else:
        root = tmp_path / "archive"
        root.mkdir()
        write_archive(root / cifar.ARCHIVE.name, tmp_path / "src" / cifar.BATCH_FOLDER)
    check(load_dataset("cifar-10", data_dir=root), truth)


def test_also_reads_python3_pickles(tmp_path):
    folder = tmp_path / cifar.BATCH_FOLDER
    folder.mkdir()
    for name in (*cifar.TRAIN_BATCHES, cifar.TEST_BATCH):
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}  # bytes keys, as encoding='bytes' gives
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    assert load_dataset("cifar-10", data_dir=tmp_path).train.labels.tolist() == [1, 2] * 5


class Payload:
    """Unpickling this would run a shell command that creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_payload_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    truth = write_batches(tmp_path / "data")
    assert truth
    evil = pickle.dumps({"data": Payload(marker), "labels": [0]}, protocol=2)
    (tmp_path / "data" / "data_batch_3").write_bytes(evil)
    with pytest.raises(DataError, match=r"data_batch_3: refused: refusing to load the global (posix|os)\.system"):
        load_dataset("cifar-10", data_dir=tmp_path / "data")
    assert not marker.exists()


@pytest.mark.parametrize(("batch", "message"), [
    ({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, "rows of 3072 bytes"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "2 class indices"),
    ({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}, "class indices in 0..9"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": ["a", "b"]}, "class indices in 0..9"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [[1, 2], [3]]}, "class indices in 0..9"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": "01"}, "a list of 2 class indices"),
    ({"data": np.zeros((2, 3072), np.uint8)}, "a list of 2 class indices"),
    ([1, 2, 3], "expected a dict"),
])  # fmt: skip
def test_malformed_batches_are_refused(batch, message):
    with pytest.raises(DataError, match=message):
        cifar.parse_batch(py2_pickle(batch), source="bad")


@pytest.mark.parametrize(("labels", "message"), [
    ([1.5, 2], "class indices in 0..9"),
    ([True, 2], "class indices in 0..9"),
    ([np.int64(1), 2], "refused: refusing to load the global numpy.*scalar"),  # numpy scalars are not allowed
])  # fmt: skip
def test_labels_of_other_types_are_refused(labels, message):
    blob = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": labels}, protocol=2)
    with pytest.raises(DataError, match=message):
        cifar.parse_batch(blob, source="bad")


def test_truncated_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        cifar.parse_batch(py2_pickle({"data": np.zeros((1, 3072), np.uint8)})[:-40], source="cut")
    with pytest.raises(DataError, match="CIFAR-10 not found.*data.download=true"):
        load_dataset("cifar-10", data_dir=tmp_path)
    (tmp_path / cifar.ARCHIVE.name).write_bytes(b"not a tar file")
    with pytest.raises(DataError, match="corrupt or truncated archive"):
        load_dataset("cifar-10", data_dir=tmp_path)


def test_opt_in_download_checks_the_checksum(tmp_path, http_folder, monkeypatch):
    www, url = http_folder
    truth = write_batches(tmp_path / "src")
    write_archive(www / cifar.ARCHIVE.name, tmp_path / "src")
    digest = hashlib.sha256((www / cifar.ARCHIVE.name).read_bytes()).hexdigest()
    target = tmp_path / "cache"
    with pytest.raises(DataError, match="but the file has 170,498,071"):  # the real size: our fake archive is refused
        load_dataset("cifar-10", data_dir=target, download=True, mirror=url)
    assert not any(target.glob("*.tar.gz")) and not any(target.glob(".*part*"))
    monkeypatch.setattr(cifar, "ARCHIVE", RemoteFile(cifar.ARCHIVE.name, digest, cifar.ARCHIVE.urls))
    check(load_dataset("cifar-10", data_dir=target, download=True, mirror=url), truth)
    assert (target / cifar.ARCHIVE.name).is_file()
    check(load_dataset("cifar-10", data_dir=target), truth)  # offline from now on


def test_archive_member_checks(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("something-else/data_batch_1")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    (tmp_path / cifar.ARCHIVE.name).write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="has no cifar-10-batches-py/data_batch_1"):
        load_dataset("cifar-10", data_dir=tmp_path)
