"""Property-based fuzzing of the readers of your own data: image files and folders, sentence pairs, CSV series,
and the inference of ``data.data_dir``. Any input gives a result that keeps its promises, or one clear error."""

from __future__ import annotations

import collections
import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from divekit.data.csv_series import read_csv_table
from divekit.data.image_decode import decode_image
from divekit.data.image_folder import scan_image_folder
from divekit.data.pairs import load_pairs_file
from divekit.data.sources.image_folder import ImageFolderSource
from divekit.data.sources.images import ImageOptions
from divekit.errors import ConfigError, DataError, DivekitError
from divekit.runs.build import infer_data

CASES = 200
RUNS: collections.Counter = collections.Counter()
FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "bmp": "BMP", "webp": "WEBP"}
SLOW = settings(max_examples=CASES // 4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                              HealthCheck.too_slow])  # fmt: skip


def one_line(err: Exception) -> None:
    assert "\n" not in str(err) and str(err).strip(), repr(err)


def encoded(kind: str, mode: str, height: int, width: int) -> bytes:
    channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
    pixels = np.random.default_rng(height * 31 + width).integers(0, 256, (height, width, *channels), dtype=np.uint8)
    buffer = io.BytesIO()
    image = Image.fromarray(pixels, mode=mode)
    (image.convert("RGB") if kind in ("jpg", "bmp") and mode == "RGBA" else image).save(buffer, format=FORMATS[kind])
    return buffer.getvalue()


images = st.builds(encoded, st.sampled_from(sorted(FORMATS)), st.sampled_from(["L", "RGB", "RGBA"]),
                   st.integers(1, 24), st.integers(1, 24))  # fmt: skip


@st.composite
def damaged(draw) -> bytes:
    data = bytearray(draw(images))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=300), damaged()), suffix=st.sampled_from(sorted(FORMATS)),
       size=st.integers(1, 16))  # fmt: skip
def test_any_bytes_decode_to_an_image_or_one_error_naming_the_file(tmp_path, content, suffix, size):
    RUNS["image bytes"] += 1
    path = tmp_path / f"fuzz.{suffix}"
    path.write_bytes(content)
    try:
        array = decode_image(path, size=size)
    except DataError as err:
        one_line(err)
        assert str(path) in str(err)
        return
    assert array.dtype == np.uint8 and array.shape in ((1, size, size), (3, size, size))


@st.composite
def folders(draw) -> list[tuple[str, str, bytes]]:
    """(class folder, file name, content) triples: real images, damaged ones and junk, in a few classes."""
    names = st.sampled_from(["cat", "dog", "Zebra", "été", "a b", "train"])
    entries = draw(st.lists(st.tuples(names, st.sampled_from(["x.png", "y.JPG", "z.gif", "w.bmp", "n.txt"]),
                                      st.one_of(images, damaged(), st.binary(max_size=40))), max_size=10))  # fmt: skip
    return [(c, f"{i}{n}", data) for i, (c, n, data) in enumerate(entries)]


@SLOW
@given(entries=folders(), skip=st.booleans(), val_split=st.sampled_from([0.0, 0.3]),
       test_split=st.sampled_from([0.0, 0.25]))  # fmt: skip
def test_image_folders_give_disjoint_splits_of_every_readable_image_or_one_error(entries, skip, val_split, test_split):
    RUNS["image folders"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "imgs"
        root.mkdir()
        for folder, name, data in entries:
            (root / folder).mkdir(exist_ok=True)
            (root / folder / name).write_bytes(data)
        options = ImageOptions(resize=8, skip_bad_images=skip, test_split=test_split)
        try:
            source = ImageFolderSource(scan_image_folder(root), options, batch_size=4, eval_batch_size=4,
                                       val_split=val_split, split_seed=1)  # fmt: skip
        except DivekitError as err:
            one_line(err)
            return
    files = source.split_files
    readable = len(source.decoded.readable)
    assert sum(len(v) for v in files.values()) == readable == len(set().union(*files.values()))
    assert len(source.decoded.bad) + readable == len(source.folder.files)
    assert skip or not source.decoded.bad
    assert source.train.images.shape[1:] == (source.data.in_channels, 8, 8)
    assert int(source.train.labels.max()) < len(source.folder.class_names)


cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"), max_size=10)


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(cell, max_size=4).map("\t".join), max_size=30))
def test_pairs_files_split_by_source_sentence_or_fail_in_one_line(tmp_path, lines):
    RUNS["pairs"] += 1
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        data = load_pairs_file(path)
    except DataError as err:
        one_line(err)
        return
    assert len(data.pairs) + len(data.held_out) == sum(1 for line in lines if line.strip())
    assert data.pairs and data.held_out
    assert {s for s, _ in data.pairs}.isdisjoint({s for s, _ in data.held_out})


number = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr))
csv_cell = st.one_of(number, cell.filter(lambda s: "," not in s and '"' not in s), st.just(""))


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(1, 3), rows=st.lists(st.lists(csv_cell, min_size=1, max_size=3), max_size=25),
       column=st.sampled_from([None, "1", "a", "b"]))  # fmt: skip
def test_csv_files_give_a_finite_standardised_series_or_one_error(tmp_path, width, rows, column):
    RUNS["csv"] += 1
    path = tmp_path / "s.csv"
    header = ",".join("ab"[i] if i < 2 else "c" for i in range(width))
    path.write_text("\n".join([header] + [",".join(r) for r in rows]), encoding="utf-8")
    try:
        series = read_csv_table(path).series(column)
    except (DataError, ConfigError) as err:
        one_line(err)
        return
    assert torch.isfinite(series.values).all() and len(series.values) >= 10
    assert 0 < series.n_train < len(series.values)
    assert abs(float(series.values[:series.n_train].mean())) < 1e-3


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=200), suffix=st.sampled_from(["", ".txt", ".csv", ".tsv", ".png"]))
def test_any_file_is_inferred_as_a_data_set_or_refused_in_one_line(tmp_path, content, suffix):
    RUNS["infer"] += 1
    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    try:
        name, reason = infer_data(path)
    except ConfigError as err:
        one_line(err)
        return
    assert name in ("csv-series", "pairs", "text-file") and reason


def test_cases_ran():
    """How many cases each property ran (printed with pytest -s)."""
    print(f"own-data fuzz cases: {dict(RUNS)}")
    assert all(RUNS[k] > 0 for k in ("image bytes", "image folders", "pairs", "csv", "infer"))
