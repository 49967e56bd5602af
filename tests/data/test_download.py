import contextlib
import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time

import pytest

from divekit.data import download as download_module
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


# ------------------------------------------------------------ hostile servers (local, 127.0.0.1)
@contextlib.contextmanager
def serve(body):
    """An HTTP/1.0 server on 127.0.0.1 whose every GET runs ``body(handler, sent)``; yields (base URL, sent bytes)."""
    sent = [0]
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            try:
                body(self, sent, stop)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up: what a bounded download does

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", sent
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def endless(headers=()):
    def body(handler, sent, stop):
        handler.send_response(200)
        for key, value in headers:
            handler.send_header(key, value)
        handler.end_headers()
        while not stop.is_set():
            handler.wfile.write(b"x" * 65536)
            sent[0] += 65536
    return body


def drip(total, every):
    def body(handler, sent, stop):
        handler.send_response(200)
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        for _ in range(total):
            if stop.wait(every):
                return
            handler.wfile.write(b"x")
            handler.wfile.flush()
            sent[0] += 1
    return body


def cut_short(handler, sent, stop):
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b"x" * 500)  # then the connection closes


def sized(name, size):
    return RemoteFile(name, "0" * 64, ("https://example.invalid/" + name,), size=size)


@pytest.mark.parametrize("headers, size", [((), 1000), ((), 0), ((("Content-Length", str(10**12)),), 0),
                                           ((("Content-Length", "5000"),), 1000)])  # fmt: skip
def test_an_endless_body_stops_at_the_known_or_announced_size(tmp_path, monkeypatch, headers, size):
    """Before: 22.5 GB in 40 s. Now: stops at the known size, or refuses an announced size that is wrong or absurd."""
    monkeypatch.setattr(download_module, "UNKNOWN_SIZE_LIMIT", 1 << 20)
    with serve(endless(headers)) as (url, sent), pytest.raises(DataError) as err:
        download(sized("a.bin", size), tmp_path, mirror=url, retries=1, timeout=5, progress=False)
    message = str(err.value)
    assert ("sent more than the expected" in message or "announces" in message) and "\n" not in message
    assert sent[0] < 64 << 20  # what the socket buffers hold at most, not gigabytes
    assert os.listdir(tmp_path) == []


def test_a_slow_drip_is_stopped_by_the_deadline(tmp_path):
    """Before: one byte every 5 s hung past 140 s and left a .part file. Now: the deadline ends it, nothing is left."""
    started = time.monotonic()
    with serve(drip(total=100, every=0.2)) as (url, sent), pytest.raises(DataError, match="too slow"):
        download(sized("a.bin", 100), tmp_path, mirror=url, retries=3, timeout=5, deadline=1.5, progress=False)
    assert time.monotonic() - started < 10 and sent[0] < 100  # stopped long before the 20 s the drip would take
    assert os.listdir(tmp_path) == []


def test_a_server_that_never_answers_is_stopped_by_the_deadline(tmp_path):
    def silent(handler, sent, stop):
        stop.wait(30)

    with serve(silent) as (url, _), pytest.raises(DataError, match="could not download a.bin"):
        download(sized("a.bin", 100), tmp_path, mirror=url, retries=100, timeout=0.5, deadline=2, progress=False)
    assert os.listdir(tmp_path) == []


def test_a_connection_cut_short_is_retried_then_reported(tmp_path):
    with serve(cut_short) as (url, _), pytest.raises(DataError, match="closed after 500 of 1,000 bytes"):
        download(sized("a.bin", 1000), tmp_path, mirror=url, retries=2, timeout=5, progress=False)
    assert os.listdir(tmp_path) == []


def test_a_content_length_shorter_than_the_file_is_a_mismatch(tmp_path):
    with serve(endless((("Content-Length", "10"),))) as (url, _), pytest.raises(DataError, match="announces 10 bytes"):
        download(sized("a.bin", 1000), tmp_path, mirror=url, retries=1, progress=False)


def test_stale_part_files_of_a_killed_download_are_removed_on_the_next_attempt(tmp_path, http_folder):
    """A real download killed with -9 leaves its .part file; the next download removes it and succeeds."""
    served, good_url = http_folder
    (served / "a.bin").write_bytes(b"hello" * 20)
    target = tmp_path / "target"
    code = ("from pathlib import Path; from divekit.data.download import RemoteFile, download\n"
            f"download(RemoteFile('a.bin', '0' * 64, (), size=100), Path({str(target)!r}), mirror=URL, progress=False)")
    with serve(drip(total=100, every=0.05)) as (slow_url, sent):
        child = subprocess.Popen([sys.executable, "-c", code.replace("URL", repr(slow_url))])
        deadline = time.monotonic() + 60
        while sent[0] < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        child.kill()
        child.wait()
    left = os.listdir(target)
    assert len(left) == 1 and left[0].startswith(".a.bin.part")
    (target / ".a.bin.part-from-an-older-divekit").write_bytes(b"x")
    path = download(remote("a.bin", b"hello" * 20), target, mirror=good_url, progress=False)
    assert path.read_bytes() == b"hello" * 20 and os.listdir(target) == ["a.bin"]


def test_an_unwritable_data_folder_is_one_line(tmp_path):
    from divekit.io import DiskWriteError

    (tmp_path / "file").write_text("x")
    with pytest.raises(DiskWriteError, match="cannot create the folder"):
        download(remote("a.bin", b""), tmp_path / "file" / "data", mirror="http://127.0.0.1:9/", progress=False)


def test_the_default_deadline_grows_with_the_size():
    assert download_module.deadline_for(0) > download_module.deadline_for(170_498_071) > download_module.deadline_for(1)
