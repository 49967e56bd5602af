"""Property-based fuzzing of the readers of weights, lock files and images: any bytes give a result or one error.

Each reader gets random bytes and mutations (bit flips, cuts, a wrong declared length) of valid files:
``io.load`` and ``read_pretrained`` (PyTorch zip, PyTorch's legacy format, safetensors), the lock file's
owner, ``RunLock`` itself, and ``load_image`` with EXIF orientations.
"""

from __future__ import annotations

import collections
import io as stdlib_io
import json
import os
import socket
import time

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from divekit import io
from divekit.engine import lock as lock_module
from divekit.errors import CheckpointError, ConfigError, DataError
from divekit.inference.predict import load_image
from divekit.runs.finetune import read_pretrained

CASES = 200
RUNS: collections.Counter = collections.Counter()
FIXTURES = [HealthCheck.function_scoped_fixture]


def _torch_bytes(legacy: bool) -> bytes:
    buffer = stdlib_io.BytesIO()
    torch.save({"w": torch.arange(12.0).reshape(3, 4), "b": torch.ones(2)}, buffer,
               _use_new_zipfile_serialization=not legacy)  # fmt: skip
    return buffer.getvalue()


def _safetensors_bytes() -> bytes:
    from safetensors.torch import save

    return save({"w": torch.arange(12.0).reshape(3, 4), "b": torch.ones(2)})


VALID = {"zip": _torch_bytes(False), "legacy": _torch_bytes(True), "safetensors": _safetensors_bytes()}
mutations = st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 255)), max_size=4)


def mutate(data: bytes, flips, cut: int) -> bytes:
    out = bytearray(data)
    for position, mask in flips:
        if position < len(out):
            out[position] ^= mask
    return bytes(out[: len(out) - cut] if cut else out)


def load_or_one_error(path) -> object:
    try:
        return io.load(path)
    except CheckpointError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return None


@settings(max_examples=CASES, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.binary(max_size=300))
def test_weights_random_bytes(tmp_path, data):
    RUNS["weights random"] += 1
    (tmp_path / "w.pt").write_bytes(data)
    load_or_one_error(tmp_path / "w.pt")


@settings(max_examples=CASES, deadline=None, suppress_health_check=FIXTURES)
@given(kind=st.sampled_from(sorted(VALID)), flips=mutations, cut=st.integers(0, 300),
       name=st.sampled_from(["w.pt", "w.safetensors", "w.bin"]))  # fmt: skip
def test_weights_mutated(tmp_path, kind, flips, cut, name):
    """A flipped byte may go unnoticed (inside a tensor's data); anything else is one CheckpointError."""
    RUNS["weights mutated"] += 1
    path = tmp_path / name
    path.write_bytes(mutate(VALID[kind], flips, cut))
    loaded = load_or_one_error(path)
    if loaded is not None and not flips and not cut:
        assert torch.equal(loaded["w"], torch.arange(12.0).reshape(3, 4))


@settings(max_examples=CASES, deadline=None, suppress_health_check=FIXTURES)
@given(declared=st.integers(0, 2**64 - 1), body=st.binary(max_size=200))
def test_safetensors_any_declared_header_length(tmp_path, declared, body):
    RUNS["safetensors header"] += 1
    (tmp_path / "w.safetensors").write_bytes(declared.to_bytes(8, "little") + b"{" + body)
    load_or_one_error(tmp_path / "w.safetensors")


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5)
    | st.builds(torch.zeros, st.integers(0, 3)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4) | st.integers(0, 3), inner,
                                                                max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=CASES // 2, deadline=None, suppress_health_check=FIXTURES)
@given(content=plain)
def test_read_pretrained_any_plain_data(tmp_path, content):
    """Whatever plain data a file holds: a mapping of names to tensors, or one CheckpointError."""
    RUNS["pretrained plain data"] += 1
    torch.save(content, tmp_path / "w.pt")
    try:
        weights, name = read_pretrained(tmp_path / "w.pt")
    except CheckpointError as err:
        assert "\n" not in str(err)
        return
    assert name is None and weights and all(isinstance(k, str) and torch.is_tensor(v) for k, v in weights.items())


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=4),
                           max_leaves=10)  # fmt: skip
owners = st.fixed_dictionaries({}, optional={"host": json_values | st.just(socket.gethostname()),
                                             "pid": json_values, "start": json_values, "since": json_values})


@settings(max_examples=CASES, deadline=None)
@given(content=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | owners.map(lambda v: json.dumps(v).encode()))  # fmt: skip
def test_lock_owner_parser(content):
    RUNS["lock owner"] += 1
    owner = lock_module.parse_owner(content)
    if owner:
        assert isinstance(owner["host"], str) and type(owner["pid"]) is int and 0 < owner["pid"] < 2**31


@settings(max_examples=CASES // 2, deadline=None, suppress_health_check=FIXTURES)
@given(content=st.binary(max_size=200) | owners.map(lambda v: json.dumps(v).encode()))
def test_lock_with_any_content_is_taken_over_or_respected(tmp_path, content):
    """An old lock holding anything: taken over, or respected with one line (a live owner on this host)."""
    RUNS["lock files"] += 1
    folder = tmp_path / f"run-{RUNS['lock files']}"
    folder.mkdir()
    (folder / ".lock").write_bytes(content)
    os.utime(folder / ".lock", (time.time() - 60, time.time() - 60))
    try:
        with lock_module.RunLock(folder) as held:
            assert json.loads(held.path.read_text())["pid"] == os.getpid()
    except ConfigError as err:
        assert "in use" in str(err) and "\n" not in str(err)
        owner = lock_module.parse_owner(content)
        assert owner and owner["host"] == socket.gethostname()


def _image_bytes(fmt: str, orientation: int) -> bytes:
    picture = np.arange(12 * 20, dtype=np.uint8).reshape(12, 20)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = stdlib_io.BytesIO()
    Image.fromarray(picture).save(buffer, format=fmt, exif=exif)
    return buffer.getvalue()


@settings(max_examples=CASES, deadline=None, suppress_health_check=FIXTURES)
@given(fmt=st.sampled_from(["PNG", "JPEG", "TIFF", "WEBP"]), orientation=st.integers(0, 10), flips=mutations,
       cut=st.integers(0, 100), channels=st.sampled_from([1, 3]))  # fmt: skip
def test_images_with_any_orientation_and_damage(tmp_path, fmt, orientation, flips, cut, channels):
    """An upright array of the asked shape, or one DataError; never another exception."""
    RUNS["images"] += 1
    path = tmp_path / f"image.{fmt.lower()}"
    path.write_bytes(mutate(_image_bytes(fmt, orientation), flips, cut))
    try:
        array = load_image(path, channels=channels, size=16)
    except DataError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert array.shape == (channels, 16, 16) and array.dtype == np.uint8


def test_cases_ran():
    """How many cases each property ran (printed with pytest -s; recorded in docs/reliability.md)."""
    print(f"file fuzz cases: {dict(RUNS)}")
    assert all(count > 0 for count in RUNS.values()) or not any(RUNS.values())
