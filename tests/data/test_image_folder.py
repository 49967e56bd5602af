"""Image folders: both layouts, class names, the decode cache (reused, rebuilt on change), bad images, splits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from divekit.data.image_folder import decode_folder, scan_image_folder
from divekit.data.sources.image_folder import stratified_holdout
from divekit.errors import ConfigError, DataError
from divekit.runs import evaluate_run, load_run, resolve_config, train
from divekit.runs.build import build_source

SIZE = 12


def write_image(path: Path, value: int, *, mode: str = "L", size: tuple[int, int] = (10, 14)) -> Path:
    """A flat image of brightness ``value`` (the class is visible in the pixels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"L": (), "RGB": (3,)}[mode]
    Image.fromarray(np.full((size[1], size[0], *channels), value, dtype=np.uint8), mode=mode).save(path)
    return path


def make_folder(root: Path, counts: dict[str, int], *, prefix: str = "") -> Path:
    """``root/<prefix><class>/<i>.png``, class ``k`` at brightness ``40 + 60 k``, plus a stray non-image file."""
    for k, (name, count) in enumerate(counts.items()):
        for i in range(count):
            write_image(root / prefix / name / f"{i:03d}.png", 40 + 60 * k)
        (root / prefix / name / "notes.txt").write_text("not an image")
    return root


def source(folder: Path, **overrides):
    config = resolve_config("lenet", data="image-folder", overrides={
        "data.data_dir": str(folder), "task.options.resize": SIZE, **overrides})  # fmt: skip
    return build_source(config)


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


# ----------------------------------------------------------------------------- listing
def test_pool_layout_lists_classes_images_and_ignores_the_rest(tmp_path):
    root = make_folder(tmp_path / "pets", {"dog": 3, "cat": 2})
    write_image(root / "cat" / "deeper" / "x.JPG", 40)
    (root / "cat" / ".hidden.png").write_bytes(b"")
    (root / ".thumbs").mkdir()
    folder = scan_image_folder(root)
    assert folder.class_names == ("cat", "dog") and folder.layout == "classes"  # sorted folder names
    assert [(f.path, f.label) for f in folder.files] == [
        ("cat/000.png", 0), ("cat/001.png", 0), ("cat/deeper/x.JPG", 0),
        ("dog/000.png", 1), ("dog/001.png", 1), ("dog/002.png", 1)]  # fmt: skip
    assert folder.ignored == 2  # the two notes.txt


def test_split_layout_takes_classes_from_train(tmp_path):
    root = make_folder(tmp_path / "hotdog", {"hotdog": 2, "not-hotdog": 2}, prefix="train")
    make_folder(root, {"hotdog": 1}, prefix="test")
    make_folder(root, {"not-hotdog": 1}, prefix="valid")
    folder = scan_image_folder(root)
    assert folder.layout == "splits" and folder.class_names == ("hotdog", "not-hotdog")
    by_split = {s: [(f.path, f.label) for f in folder.files if f.split == s] for s in ("train", "val", "test")}
    assert by_split["test"] == [("test/hotdog/000.png", 0)]
    assert by_split["val"] == [("valid/not-hotdog/000.png", 1)]  # the label is train's index, not test's
    assert len(by_split["train"]) == 4


@pytest.mark.parametrize(("build", "message"), [
    (lambda r: make_folder(r, {"only": 2}), "1 class subfolder"),
    (lambda r: (make_folder(r, {"a": 1}), (r / "b").mkdir()), r"class folder .*b holds no images"),
    (lambda r: (make_folder(r, {"a": 1, "b": 1}), write_image(r / "loose.png", 0)), "outside class folders"),
    (lambda r: (make_folder(r, {"a": 1, "b": 1}, prefix="train"), make_folder(r, {"c": 1}, prefix="test")),
     "class folder 'c' that train/ lacks"),
    (lambda r: (make_folder(r, {"a": 1, "b": 1}, prefix="train"), make_folder(r, {"a": 1}, prefix="extra")),
     "also extra/"),
    (lambda r: r.with_name("missing"), "is not a folder"),
])  # fmt: skip
def test_bad_layouts_are_one_clear_error(tmp_path, build, message):
    root = tmp_path / "imgs"
    root.mkdir()
    target = build(root)
    with pytest.raises(DataError, match=message) as err:
        scan_image_folder(target if isinstance(target, Path) and target.name == "missing" else root)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------- cache
def test_decoded_once_then_read_from_a_cache_outside_the_folder(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 3, "b": 2})
    before = listing(root)
    first = decode_folder(scan_image_folder(root), size=SIZE)
    second = decode_folder(scan_image_folder(root), size=SIZE)
    assert not first.from_cache and second.from_cache
    assert torch.equal(first.images, second.images) and first.images.shape == (5, 1, SIZE, SIZE)
    assert first.cache.is_file() and Path(os.environ["DIVEKIT_DATA"]) in first.cache.parents
    assert listing(root) == before  # nothing written into the user's folder
    assert decode_folder(scan_image_folder(root), size=SIZE + 1).from_cache is False  # another size, another cache


@pytest.mark.parametrize("change", ["rewrite", "touch", "add", "remove"])
def test_the_cache_is_rebuilt_when_a_file_changes(tmp_path, change):
    root = make_folder(tmp_path / "imgs", {"a": 2, "b": 2})
    decode_folder(scan_image_folder(root), size=SIZE)
    target = root / "a" / "000.png"
    if change == "rewrite":  # other pixels (and size); the modification time moves on too
        write_image(target, 250, size=(20, 20))
    elif change == "touch":  # same bytes, new modification time
        os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    elif change == "add":
        write_image(root / "b" / "new.png", 7)
    else:
        target.unlink()
    rebuilt = decode_folder(scan_image_folder(root), size=SIZE)
    assert not rebuilt.from_cache
    expected = {"rewrite": 4, "touch": 4, "add": 5, "remove": 3}[change]
    assert rebuilt.images.shape[0] == expected
    if change == "rewrite":
        assert int(rebuilt.images[0].min()) == 250  # the new pixels, not the cached ones
    assert decode_folder(scan_image_folder(root), size=SIZE).from_cache  # and then reused again


def test_a_damaged_or_unwritable_cache_only_costs_time(tmp_path, monkeypatch, capsys):
    root = make_folder(tmp_path / "imgs", {"a": 2, "b": 2})
    first = decode_folder(scan_image_folder(root), size=SIZE)
    first.cache.write_bytes(b"garbage")
    again = decode_folder(scan_image_folder(root), size=SIZE)
    assert not again.from_cache and torch.equal(again.images, first.images)
    assert "is damaged; decoding the images again" in capsys.readouterr().err
    from divekit import io

    def full_disk(*args, **kwargs):
        raise io.DiskWriteError("could not write it: no space left on device")

    monkeypatch.setattr(io, "save", full_disk)
    again.cache.unlink()
    assert torch.equal(decode_folder(scan_image_folder(root), size=SIZE).images, first.images)
    assert "could not write the image cache" in capsys.readouterr().err


def test_gray_and_colour_images_together_give_three_equal_channels_for_gray(tmp_path):
    root = tmp_path / "mixed"
    write_image(root / "a" / "gray.png", 77)
    write_image(root / "b" / "red.png", 0, mode="RGB")
    decoded = decode_folder(scan_image_folder(root), size=SIZE)
    assert decoded.images.shape == (2, 3, SIZE, SIZE)
    assert (decoded.images[0] == 77).all()


# ------------------------------------------------------------------------ the data source
def test_a_corrupt_image_is_refused_by_path_or_skipped_and_counted(tmp_path, capsys):
    root = make_folder(tmp_path / "imgs", {"a": 6, "b": 6})
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DataError, match=r"1 image\(s\) cannot be read: .*b/broken\.jpg: not a readable image.*"
                                        r"task\.options\.skip_bad_images=true"):  # fmt: skip
        source(root)
    skipped = source(root, **{"task.options.skip_bad_images": True})
    assert "skipped 1 unreadable image(s)" in capsys.readouterr().err
    assert skipped.info()["image_folder"]["skipped_images"] == ["b/broken.jpg"]
    assert sum(skipped.info()["splits"].values()) == 12


def test_seeded_split_is_stratified_recorded_and_disjoint(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 10, "b": 20})
    s = source(root, **{"data.val_split": 0.2, "data.split_seed": 3, "task.options.test_split": 0.3})
    files = s.split_files
    assert len(files["test"]) == 3 + 6  # 30% of each class
    assert sum(f.startswith("a/") for f in files["test"]) == 3
    assert set(files["train"]).isdisjoint(files["val"]) and set(files["train"]).isdisjoint(files["test"])
    assert set(files["val"]).isdisjoint(files["test"])
    assert len(files["train"]) + len(files["val"]) + len(files["test"]) == 30
    assert json.loads(s.extras()["image_splits.json"]) == files
    again = source(root, **{"data.val_split": 0.2, "data.split_seed": 3, "task.options.test_split": 0.3})
    assert again.split_files == files  # seeded: the same split every time
    other = source(root, **{"data.val_split": 0.2, "data.split_seed": 4, "task.options.test_split": 0.3})
    assert other.split_files["test"] != files["test"]


def test_holdout_keeps_one_image_per_class_and_moves_few_files_when_one_is_added():
    paths = [f"c{k}/{i}.png" for k in range(3) for i in range(40)]
    labels = [k for k in range(3) for _ in range(40)]
    kept, held = stratified_holdout(paths, labels, 0.25, seed=0)
    assert len(held) == 30 and sorted(kept + held) == list(range(120))
    kept2, held2 = stratified_holdout(paths + ["c0/new.png"], labels + [0], 0.25, seed=0)
    moved = {paths[i] for i in held} ^ {(paths + ["c0/new.png"])[i] for i in held2}
    assert len(moved) <= 2
    assert stratified_holdout(["a/1", "b/1", "b/2"], [0, 1, 1], 0.5, seed=0)[1] == [1]  # a class of one stays in train
    with pytest.raises(ConfigError, match="test_split"):
        stratified_holdout(paths, labels, 1.0, seed=0)


def test_given_split_folders_are_used_as_they_are(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 4, "b": 4}, prefix="train")
    make_folder(root, {"a": 2, "b": 1}, prefix="val")
    make_folder(root, {"a": 1, "b": 2}, prefix="test")
    s = source(root)
    assert {k: len(v) for k, v in s.split_files.items()} == {"train": 8, "val": 3, "test": 3}
    assert all(f.startswith("val/") for f in s.split_files["val"])
    with pytest.raises(ConfigError, match="has a val/ folder"):
        source(root, **{"data.val_split": 0.1})


def test_train_evaluate_and_predict_without_registration(tmp_path, capsys):
    root = make_folder(tmp_path / "imgs", {"dark": 12, "light": 12})
    config = resolve_config("softmax", data="image-folder", overrides={
        "data.data_dir": str(root), "data.val_split": 0.25, "train.epochs": 3, "train.progress": False,
        "optim.lr": 0.5, "data.batch_size": 8})  # fmt: skip
    result = train(config, out_dir=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "task.json").read_text())
    assert saved["class_names"] == ["dark", "light"] and saved["input_size"] == [1, 28, 28]
    metrics = evaluate_run(tmp_path / "run")
    assert set(metrics) == {"test_loss", "test_acc"}
    best = result.best or result.final
    assert metrics["test_acc"] == pytest.approx(best["test_acc"])
    from divekit.inference.predict import predict_images

    run = load_run(tmp_path / "run")
    assert run.info["image_folder"]["root"] == str(root.resolve())
    predictions = list(predict_images(tmp_path / "run", [root / "dark" / "000.png"], top_k=2))
    assert [c for c, _ in predictions[0].top] == sorted(["dark", "light"], key=lambda c: -dict(predictions[0].top)[c])


def test_data_show_draws_a_folder(tmp_path):
    from divekit.cli import main

    root = make_folder(tmp_path / "imgs", {"a": 2, "b": 2}, prefix="train")
    make_folder(root, {"a": 1}, prefix="test")
    assert main(["data", "show", "image-folder", "--data-dir", str(root), "--split", "test",
                 "--out", str(tmp_path / "test.png")]) == 0  # fmt: skip
    assert (tmp_path / "test.png").stat().st_size > 0
    from divekit.data.image_folder import folder_images

    data = folder_images(scan_image_folder(root), size=SIZE)
    assert (len(data.train), len(data.test)) == (4, 1) and data.class_names == ("a", "b")
