"""A reader for the IDX format of MNIST and Fashion-MNIST, gzipped or not.

IDX layout (LeCun's MNIST page): a 4-byte magic number ``0x00 0x00 TT DD``
where ``TT`` is the element type and ``DD`` the number of dimensions, then
``DD`` big-endian uint32 sizes, then the elements, big-endian, row-major.

Every way a file can be wrong is reported as a :class:`DataError` naming the
file and the problem; nothing is allocated from an unchecked size.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from divekit.errors import DataError

# Element type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
# No IDX file of this curriculum comes near this; a header that claims more
# is corrupt or hostile, and is refused before anything is read.
DEFAULT_MAX_BYTES = 1 << 31


def _parse_header(head: bytes, source: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Check the magic number; return (dtype, shape, header length)."""
    if len(head) < 4:
        raise DataError(f"{source}: truncated IDX file ({len(head)} bytes; the header alone needs at least 4)")
    zero1, zero2, type_code, ndim = head[:4]
    if zero1 or zero2 or type_code not in IDX_TYPES or not 1 <= ndim <= 8:
        raise DataError(
            f"{source}: not an IDX file (bad magic number 0x{head[:4].hex()}; "
            "expected 0x0000 followed by a type code and 1-8 dimensions, e.g. 0x00000803 for images)"
        )
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise DataError(f"{source}: truncated IDX header ({len(head)} of {header_len} bytes)")
    shape = struct.unpack(f">{ndim}I", head[4:header_len])
    return IDX_TYPES[type_code], tuple(shape), header_len


def _check_size(source: str, dtype: np.dtype, shape: tuple[int, ...], max_bytes: int) -> int:
    payload = int(np.prod(shape, dtype=object)) * dtype.itemsize
    # Bound the shape itself too: (0, 10^9, 10^9) holds nothing but is no shape numpy can make.
    nominal = int(np.prod([max(d, 1) for d in shape], dtype=object)) * dtype.itemsize
    if max(payload, nominal) > max_bytes:
        raise DataError(
            f"{source}: IDX header claims shape {shape} ({payload:,} bytes), "
            f"more than the {max_bytes:,}-byte limit; the file is corrupt"
        )
    return payload


def parse_idx(data: bytes, *, source: str = "<bytes>", max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Parse a complete, uncompressed IDX file held in memory."""
    dtype, shape, header_len = _parse_header(data[:36], source)
    payload = _check_size(source, dtype, shape, max_bytes)
    body = len(data) - header_len
    if body != payload:
        state = "truncated" if body < payload else "longer than its header says"
        raise DataError(
            f"{source}: {state}: header shape {shape} needs {payload:,} data bytes, file has {body:,}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape).astype(dtype.newbyteorder("="))


def _read_gzip(path: Path, max_bytes: int) -> bytes:
    """Decompress ``path``, reading no more than the header allows (+1 byte to detect excess)."""
    source = str(path)
    try:
        with gzip.open(path, "rb") as stream:
            head = stream.read(4)
            _, _, _, ndim = head.ljust(4, b"\0")[:4]
            head += stream.read(4 * min(ndim, 8))
            dtype, shape, _ = _parse_header(head, source)
            payload = _check_size(source, dtype, shape, max_bytes)
            body = stream.read(payload + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{source}: corrupt or truncated gzip data ({err}); delete it and download it again") from err
    return head + body


def read_idx(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (gzipped or raw, told apart by content) into a numpy array.

    Raises:
        DataError: missing, empty, truncated, wrong magic number, a size the
            header does not match, or corrupt gzip data.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == GZIP_MAGIC:
        data = _read_gzip(path, max_bytes)
    else:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            dtype, shape, header_len = _parse_header(handle.read(36), str(path))
        payload = _check_size(str(path), dtype, shape, max_bytes)
        if size - header_len != payload:
            state = "truncated" if size - header_len < payload else "longer than its header says"
            raise DataError(
                f"{path}: {state}: header shape {shape} needs {payload:,} data bytes, file has {size - header_len:,}"
            )
        data = path.read_bytes()
    return parse_idx(data, source=str(path), max_bytes=max_bytes)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (used by tests and by tools that export data)."""
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    Path(path).write_bytes(gzip.compress(data) if compress else data)
