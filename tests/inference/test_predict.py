"""Reading images for ``predict``: upright by their EXIF orientation, as every viewer shows them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from divekit.errors import DataError
from divekit.inference.predict import load_image

# How each EXIF orientation stores an upright picture, from the EXIF specification's definitions (the
# stored array is what a viewer must turn back): 6 means "rotate 90 degrees clockwise to view", so the
# stored picture is the upright one turned 90 degrees counter-clockwise (np.rot90 turns counter-clockwise).
STORED = {
    1: lambda a: a,
    2: np.fliplr,  # mirrored left-right
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: np.swapaxes(a, 0, 1),  # mirrored across the main diagonal
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.swapaxes(np.rot90(a, 2), 0, 1),  # mirrored across the other diagonal
    8: lambda a: np.rot90(a, -1),
}
ORIENTATION = 0x0112


def upright_picture(size: int = 28, channels: int = 1) -> np.ndarray:
    """An asymmetric picture (an L with a dot), so that every turn and mirror of it is different."""
    a = np.zeros((size, size), dtype=np.uint8)
    a[4:24, 6:9] = 255  # the L's stem
    a[21:24, 6:18] = 200  # its foot, to the right
    a[5:8, 19:22] = 120  # a dot at the top right
    return a if channels == 1 else np.stack([a, a // 2, 255 - a], axis=-1)


def save_with_orientation(path, picture: np.ndarray, orientation: int, **options) -> None:
    stored = np.ascontiguousarray(STORED[orientation](picture))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(stored).save(path, exif=exif, **options)


def test_the_stored_pictures_really_differ():
    """The test can fail: without the EXIF tag applied, 7 of the 8 stored pictures are not the upright one."""
    picture = upright_picture()
    assert sum(np.array_equal(STORED[o](picture), picture) for o in STORED) == 1


@pytest.mark.parametrize("orientation", list(STORED))
@pytest.mark.parametrize("suffix", [".png", ".tiff", ".webp"])
def test_every_exif_orientation_is_read_upright(tmp_path, orientation, suffix):
    """Before: orientation 6 (a phone held upright) was read on its side: an upright 7 was predicted as a 4."""
    picture = upright_picture()
    path = tmp_path / f"o{orientation}{suffix}"
    save_with_orientation(path, picture, orientation, **({"lossless": True} if suffix == ".webp" else {}))
    assert np.array_equal(load_image(path, channels=1, size=28)[0], picture)


@pytest.mark.parametrize("orientation", list(STORED))
def test_color_and_jpeg_pictures_are_upright_too(tmp_path, orientation):
    picture = upright_picture(channels=3)
    save_with_orientation(tmp_path / "p.png", picture, orientation)
    assert np.array_equal(load_image(tmp_path / "p.png", channels=3, size=28), picture.transpose(2, 0, 1))
    save_with_orientation(tmp_path / "p.jpg", picture, orientation, quality=95, subsampling=0)
    got = load_image(tmp_path / "p.jpg", channels=3, size=28).astype(int)
    error = {o: np.abs(got - np.ascontiguousarray(STORED[o](picture)).transpose(2, 0, 1)).mean() for o in STORED}
    assert error[1] < min(e for o, e in error.items() if o != 1) / 3, error  # JPEG is lossy: nearest, not equal


def test_a_non_square_rotated_picture_keeps_its_content(tmp_path):
    wide = np.zeros((20, 40), dtype=np.uint8)
    wide[:, :20] = 255  # left half white when upright
    save_with_orientation(tmp_path / "w.png", wide, 6)  # stored 40 tall, 20 wide
    out = load_image(tmp_path / "w.png", channels=1, size=40)[0].astype(int)
    assert out[:, :15].mean() > 200 and out[:, 25:].mean() < 50  # still white on the left, after resizing


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_an_out_of_range_orientation_is_left_as_stored(tmp_path, value):
    picture = upright_picture()
    exif = Image.Exif()
    exif[ORIENTATION] = value
    Image.fromarray(picture).save(tmp_path / "p.png", exif=exif)
    assert np.array_equal(load_image(tmp_path / "p.png", channels=1, size=28)[0], picture)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match="no such image file"):
        load_image(tmp_path / "nope.png", channels=1, size=28)


def test_predict_gives_the_same_answer_for_a_picture_stored_rotated(tmp_path, capsys):
    """The issue's case end to end: orientation 6 (a phone held upright) is predicted as the upright picture."""
    import json

    from divekit.cli import main

    assert main(["train", "mlp", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    picture = upright_picture(size=8)
    Image.fromarray(picture).save(tmp_path / "upright.png")
    save_with_orientation(tmp_path / "phone.png", picture, 6)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run"), "--json", "--image", str(tmp_path / "upright.png"),
                 str(tmp_path / "phone.png")]) == 0  # fmt: skip
    upright, phone = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert phone["top"] == upright["top"]
