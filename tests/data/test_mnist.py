import gzip
import hashlib

import numpy as np
import pytest

from divekit.data import load_dataset
from divekit.data.idx import write_idx
from divekit.data.mnist import FASHION_MNIST, FASHION_MNIST_CLASSES, IdxDataset, IdxFile, load_idx_dataset
from divekit.errors import DataError
from tests.helpers import serve_folder, shared_data

SHAPES = {"train-images": (6, 28, 28), "train-labels": (6,), "test-images": (4, 28, 28), "test-labels": (4,)}
NAMES = {"train-images": "train-images-idx3-ubyte.gz", "train-labels": "train-labels-idx1-ubyte.gz",
         "test-images": "t10k-images-idx3-ubyte.gz", "test-labels": "t10k-labels-idx1-ubyte.gz"}  # fmt: skip


def make_files(folder, *, compress=True):
    """Write a tiny IDX data set; return its spec with the right checksums."""
    rng = np.random.default_rng(0)
    files = {}
    for key, shape in SHAPES.items():
        array = rng.integers(0, 10 if "labels" in key else 256, size=shape, dtype=np.uint8)
        name = NAMES[key] if compress else NAMES[key].removesuffix(".gz")
        write_idx(folder / name, array, compress=compress)
        raw = gzip.decompress((folder / name).read_bytes()) if compress else (folder / name).read_bytes()
        gz = (folder / name).read_bytes() if compress else gzip.compress(raw)
        files[key] = IdxFile(NAMES[key], hashlib.sha256(gz).hexdigest(), hashlib.md5(raw).hexdigest(), shape)
    return IdxDataset("tiny", files, mirrors=("https://example.invalid/",), class_names=tuple("abcdefghij"))


@pytest.mark.parametrize("compress", [True, False])
def test_loads_gzipped_or_raw_files(tmp_path, compress):
    spec = make_files(tmp_path, compress=compress)
    data = load_idx_dataset(spec, data_dir=tmp_path)
    assert data.train.images.shape == (6, 1, 28, 28) and data.test.labels.shape == (4,)
    assert data.num_classes == 10 and data.in_channels == 1


def test_data_dir_may_name_a_root_holding_the_data_set(tmp_path):
    (tmp_path / "tiny").mkdir()
    spec = make_files(tmp_path / "tiny")
    assert len(load_idx_dataset(spec, data_dir=tmp_path).train) == 6


def test_missing_folder_says_what_is_expected_where_and_how_to_download(tmp_path):
    spec = make_files(tmp_path)
    (tmp_path / NAMES["test-labels"]).unlink()
    with pytest.raises(DataError) as err:
        load_idx_dataset(spec, data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "t10k-labels-idx1-ubyte.gz" in message and "data.download=true" in message
    assert "\n" not in message


def test_corrupted_content_is_reported_and_not_used(tmp_path):
    spec = make_files(tmp_path, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01  # one flipped bit: the structure is fine, the checksum is not
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_idx_dataset(spec, data_dir=tmp_path)


def test_wrong_shape_is_reported(tmp_path):
    spec = make_files(tmp_path, compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError, match=r"expected uint8 data of shape \(4,\)"):
        load_idx_dataset(spec, data_dir=tmp_path)


def test_download_from_a_local_mirror(tmp_path):
    served = tmp_path / "mirror"
    served.mkdir()
    spec = make_files(served)
    target = tmp_path / "cache"
    with serve_folder(served) as url:
        data = load_idx_dataset(spec, data_dir=target, download_missing=True, mirror=url)
    assert len(data.train) == 6
    assert sorted(p.name for p in target.iterdir()) == sorted(NAMES.values())


def test_fashion_mnist_class_names():
    assert FASHION_MNIST_CLASSES[0] == "t-shirt/top" and FASHION_MNIST_CLASSES[9] == "ankle boot"
    assert FASHION_MNIST.class_names == FASHION_MNIST_CLASSES


def test_real_fashion_mnist_loads_and_verifies():
    folder = shared_data("fashion-mnist")
    data = load_dataset("fashion-mnist", data_dir=folder)
    assert len(data.train) == 60000 and len(data.test) == 10000
    assert data.train.labels.bincount().tolist() == [6000] * 10


def test_real_mnist_with_an_uncompressed_file():
    data = load_dataset("mnist", data_dir=shared_data("mnist"))
    assert len(data.train) == 60000 and data.train.labels[:5].tolist() == [5, 0, 4, 1, 9]


def test_data_download_command_against_a_local_mirror(tmp_path, monkeypatch, capsys):
    """`divekit data download mnist` with the official file names, served from 127.0.0.1."""
    from divekit.cli import main
    from divekit.data import mnist

    served = tmp_path / "served"
    served.mkdir()
    spec = make_files(served)
    files = {key: IdxFile(mnist.MNIST.files[key].name, f.gz_sha256, f.raw_md5, f.shape) for key, f in spec.files.items()}
    monkeypatch.setattr(mnist, "MNIST", IdxDataset("mnist", files, mnist.MNIST.mirrors, mnist.DIGIT_CLASSES))
    with serve_folder(served) as url:
        assert main(["data", "download", "mnist", "--data-dir", str(tmp_path / "got"), "--mirror", url]) == 0
    assert "mnist: ready" in capsys.readouterr().out
    assert len(list((tmp_path / "got").iterdir())) == 4
    assert main(["data", "download", "digits"]) == 0
    assert "embedded" in capsys.readouterr().out
