import gzip
import struct

import numpy as np
import pytest

from divekit.data.idx import parse_idx, read_idx, write_idx
from divekit.errors import DataError


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path, compress, dtype):
    array = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, array, compress=compress)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, array)


def test_gzip_is_told_apart_by_content_not_name(tmp_path):
    path = tmp_path / "labels-without-suffix"
    write_idx(path, np.arange(5, dtype=np.uint8), compress=True)
    assert read_idx(path).tolist() == [0, 1, 2, 3, 4]


def test_known_header_layout():
    data = bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes([7, 8, 9])
    assert parse_idx(data).tolist() == [7, 8, 9]


def header(*dims, type_code=8):
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "truncated IDX file"),
        (b"\x00\x00", "truncated IDX file"),
        (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"x", "bad magic number"),
        (b"\x00\x00\x42\x01" + struct.pack(">I", 1) + b"x", "bad magic number"),
        (b"\x00\x00\x08\x00", "bad magic number"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (header(10, 28, 28) + bytes(100), "truncated: header shape"),
        (header(2) + bytes(5), "longer than its header says"),
        (header(10**6, 10**6), "more than the"),
    ],
)
def test_bad_files_are_reported(tmp_path, content, message):
    for compress in (False, True):
        path = tmp_path / f"bad{int(compress)}"
        path.write_bytes(gzip.compress(content) if compress else content)
        with pytest.raises(DataError, match=message):
            read_idx(path)


def test_header_claiming_a_trillion_items_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(header(10**6, 10**6) + bytes(10)))  # 10^12 items
    with pytest.raises(DataError, match="1,000,000,000,000 bytes"):
        read_idx(path)


def test_gzip_bomb_reads_no_more_than_the_header_allows(tmp_path):
    path = tmp_path / "bomb.gz"
    # 4 items promised, 64 MiB of zeros delivered (compresses to ~64 KiB)
    path.write_bytes(gzip.compress(header(4) + bytes(64 << 20), compresslevel=9))
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(path)


def test_corrupt_and_truncated_gzip(tmp_path):
    good = gzip.compress(header(1000) + bytes(range(256)) * 4)
    truncated = tmp_path / "t.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(truncated)
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF  # breaks the CRC
    corrupt = tmp_path / "c.gz"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="corrupt|truncated|longer"):
        read_idx(corrupt)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nothing")
