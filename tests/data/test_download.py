import hashlib
import os

import pytest

from divekit.data.download import RemoteFile, dataset_folder, download
from divekit.errors import DataError
from tests.helpers import serve_folder


def remote(name, content, *, wrong=False):
    digest = hashlib.sha256(content + (b"x" if wrong else b"")).hexdigest()
    return RemoteFile(name, digest, ("https://example.invalid/" + name,))


def test_download_verifies_and_places_the_file(tmp_path):
    served, target = tmp_path / "served", tmp_path / "target"
    served.mkdir()
    (served / "a.bin").write_bytes(b"hello" * 1000)
    with serve_folder(served) as url:
        path = download(remote("a.bin", b"hello" * 1000), target, mirror=url, progress=False)
    assert path.read_bytes() == b"hello" * 1000
    assert os.listdir(target) == ["a.bin"]


def test_wrong_checksum_deletes_the_download_and_says_so(tmp_path):
    served, target = tmp_path / "served", tmp_path / "target"
    served.mkdir()
    (served / "a.bin").write_bytes(b"tampered")
    with serve_folder(served) as url, pytest.raises(DataError, match="checksum mismatch.*deleted"):
        download(remote("a.bin", b"tampered", wrong=True), target, mirror=url, progress=False)
    assert os.listdir(target) == []


def test_missing_file_on_the_server_fails_after_retries(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with serve_folder(served) as url, pytest.raises(DataError, match="could not download a.bin.*HTTP 404"):
        download(remote("a.bin", b""), tmp_path / "t", mirror=url, retries=2, timeout=5, progress=False)
    assert os.listdir(tmp_path / "t") == []


def test_unreachable_server_times_out_with_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="could not download"):
        download(remote("a.bin", b""), tmp_path, mirror="http://127.0.0.1:9/", retries=1, timeout=2, progress=False)


def test_plain_http_is_refused_without_an_explicit_mirror(tmp_path):
    insecure = RemoteFile("a.bin", "0" * 64, ("http://example.invalid/a.bin",))
    with pytest.raises(DataError, match="refusing to download over plain HTTP"):
        download(insecure, tmp_path, progress=False)


def test_mirror_from_the_environment(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "b.bin").write_bytes(b"abc")
    with serve_folder(served) as url:
        monkeypatch.setenv("DIVEKIT_MIRROR", url)
        assert download(remote("b.bin", b"abc"), tmp_path / "t", progress=False).read_bytes() == b"abc"


def test_default_folder_is_under_the_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DIVEKIT_DATA", str(tmp_path))
    assert dataset_folder("mnist", None) == tmp_path / "mnist"
    assert dataset_folder("mnist", tmp_path / "x") == tmp_path / "x"
