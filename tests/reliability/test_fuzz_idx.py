"""Property-based fuzzing of the IDX reader: any bytes give an array or one DataError, nothing else."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from divekit.data.idx import IDX_TYPES, parse_idx, read_idx, write_idx
from divekit.errors import DataError

CASES = 400
RUNS = {"random": 0, "mutated": 0, "round-trip": 0}


def parse_or_data_error(data: bytes) -> np.ndarray | None:
    try:
        return parse_idx(data, max_bytes=1 << 20)
    except DataError as err:
        assert "\n" not in str(err)
        return None


@settings(max_examples=CASES, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data):
    RUNS["random"] += 1
    parse_or_data_error(data)


@settings(max_examples=CASES, deadline=None)
@given(
    type_code=st.sampled_from([*IDX_TYPES, 0x00, 0x07, 0xFF]),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=9),
    body=st.binary(max_size=300),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 255)), max_size=3),
)
def test_mutated_headers(type_code, dims, body, flips):
    RUNS["mutated"] += 1
    data = bytearray(bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body)
    for position, mask in flips:
        if position < len(data):
            data[position] ^= mask
    array = parse_or_data_error(bytes(data))
    if array is not None:  # accepted: then it is exactly what the header says
        assert array.size * array.dtype.itemsize == len(data) - 4 - 4 * array.ndim


@settings(max_examples=CASES // 4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    dtype=st.sampled_from(["u1", "i1", "i2", "i4", "f4", "f8"]),
    compress=st.booleans(),
    cut=st.integers(0, 64),
)
def test_round_trip_and_truncation(tmp_path, shape, dtype, compress, cut):
    RUNS["round-trip"] += 1
    array = np.arange(int(np.prod(shape))).astype(dtype).reshape(shape)
    path = tmp_path / "f.idx"
    write_idx(path, array, compress=compress)
    assert np.array_equal(read_idx(path), array)
    if cut:
        raw = path.read_bytes()
        path.write_bytes(raw[: max(0, len(raw) - cut)])
        try:
            read_idx(path)
            assert compress and cut < 8  # only gzip's 8-byte trailer may go missing unnoticed... never the data
        except DataError:
            pass


def test_cases_ran():
    """Report how many cases each property ran (printed with pytest -s; recorded in docs/reliability.md)."""
    print(f"IDX fuzz cases: {RUNS}")
    assert all(count > 0 for count in RUNS.values()) or not any(RUNS.values())
