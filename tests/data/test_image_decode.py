"""Decoding one image file: every listed format and mode, EXIF orientation, 16-bit, transparency, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from divekit.data.image_decode import IMAGE_SUFFIXES, decode_image, is_image_file
from divekit.errors import DataError

SIZE = 8
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".gif": "GIF",
           ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM"}
GRAY_ONLY = {".pgm"}  # a format that holds gray pictures only


def gradient(height: int = 16, width: int = 16) -> np.ndarray:
    """A smooth uint8 RGB picture: red grows left to right, green top to bottom, blue constant."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.stack([x, y, np.full_like(x, 90)], axis=-1).round().astype(np.uint8)


def reference(rgb: np.ndarray) -> np.ndarray:
    """What decoding an RGB array must give: PIL's own bilinear resize, channels first."""
    return np.asarray(Image.fromarray(rgb).resize((SIZE, SIZE), Image.Resampling.BILINEAR)).transpose(2, 0, 1)


def test_every_listed_suffix_is_known_and_case_blind(tmp_path):
    assert set(FORMATS) | GRAY_ONLY == set(IMAGE_SUFFIXES)
    assert is_image_file(tmp_path / "A.JPG") and is_image_file(tmp_path / "b.Png")
    assert not is_image_file(tmp_path / "notes.txt") and not is_image_file(tmp_path / ".hidden.png")


@pytest.mark.parametrize("suffix", sorted(FORMATS))
def test_rgb_in_every_format_decodes_to_the_same_picture(tmp_path, suffix):
    rgb = gradient()
    path = tmp_path / f"picture{suffix}"
    Image.fromarray(rgb).save(path, format=FORMATS[suffix], **({"quality": 95} if FORMATS[suffix] == "JPEG" else {}))
    out = decode_image(path, size=SIZE)
    assert out.dtype == np.uint8 and out.shape == (3, SIZE, SIZE)
    lossless = FORMATS[suffix] in ("PNG", "BMP")
    tolerance = 0 if lossless else 40  # JPEG/WebP are lossy; GIF quantises to a 256-colour palette
    assert np.abs(out.astype(int) - reference(rgb).astype(int)).max() <= tolerance


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".jpg"])  # WebP stores no grayscale: it reads back as RGB
def test_grayscale_gives_one_channel(tmp_path, suffix):
    gray = gradient()[..., 0]
    path = tmp_path / f"gray{suffix}"
    Image.fromarray(gray, mode="L").save(path)
    out = decode_image(path, size=SIZE)
    expected = np.asarray(Image.fromarray(gray).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    assert out.shape == (1, SIZE, SIZE)
    assert np.abs(out[0].astype(int) - expected.astype(int)).max() <= (0 if suffix in (".png", ".bmp") else 8)


def test_one_bit_images_are_black_and_white(tmp_path):
    bits = np.zeros((16, 16), dtype=bool)
    bits[:, 8:] = True
    Image.fromarray(bits).convert("1").save(tmp_path / "bits.bmp")
    out = decode_image(tmp_path / "bits.bmp", size=16)
    assert out.shape == (1, 16, 16) and set(np.unique(out)) == {0, 255}
    assert (out[0, :, :8] == 0).all() and (out[0, :, 8:] == 255).all()


def test_16_bit_gray_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 10], [257 * 128, 65535]], dtype=np.uint16).repeat(8, 0).repeat(8, 1)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = decode_image(tmp_path / "deep.png", size=16)
    assert out.shape == (1, 16, 16)
    assert [out[0, 0, 0], out[0, 0, 15], out[0, 15, 0], out[0, 15, 15]] == [0, 10, 128, 255]  # v / 257


def test_palette_images_give_their_colours(tmp_path):
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[:, 8:] = (200, 30, 60)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "palette.png")
    assert Image.open(tmp_path / "palette.png").mode == "P"
    out = decode_image(tmp_path / "palette.png", size=16)
    assert out.shape == (3, 16, 16)
    assert tuple(out[:, 0, 15]) == (200, 30, 60) and tuple(out[:, 0, 0]) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_pixels_become_white(tmp_path, mode):
    channels = 4 if mode == "RGBA" else 2
    pixels = np.zeros((16, 16, channels), dtype=np.uint8)  # black everywhere...
    pixels[:, :8, -1] = 255  # ...opaque on the left, fully transparent on the right
    pixels[:, 8:, 0] = 0
    Image.fromarray(pixels, mode=mode).save(tmp_path / "alpha.png")
    out = decode_image(tmp_path / "alpha.png", size=16)
    assert out.shape == ((3 if mode == "RGBA" else 1), 16, 16)
    assert (out[:, :, :7] == 0).all() and (out[:, :, 9:] == 255).all()


def test_palette_with_a_transparent_colour_is_composited(tmp_path):
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    image.paste(1, (0, 0, 8, 16))
    image.info["transparency"] = 0  # colour 0 (black) is transparent
    image.save(tmp_path / "transparent.gif")
    out = decode_image(tmp_path / "transparent.gif", size=16)
    assert tuple(out[:, 0, 0]) == (10, 200, 10) and tuple(out[:, 0, 15]) == (255, 255, 255)


@pytest.mark.parametrize(("orientation", "rotate"), [(1, None), (3, Image.Transpose.ROTATE_180),
                                                     (6, Image.Transpose.ROTATE_270), (8, Image.Transpose.ROTATE_90)])
def test_exif_orientation_is_applied(tmp_path, orientation, rotate):
    upright = gradient(16, 32)  # wide: rotating it by 90 degrees makes it tall
    stored = Image.fromarray(upright)
    if rotate is not None:  # store the pixels as a camera would, with the tag that undoes the turn
        stored = stored.transpose({Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
                                   Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270}.get(rotate, rotate))
    exif = stored.getexif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "photo.png", exif=exif)
    out = decode_image(tmp_path / "photo.png", size=SIZE)
    np.testing.assert_array_equal(out, reference(upright))


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_to_the_same_picture(tmp_path):
    big = np.asarray(Image.fromarray(gradient()).resize((1024, 1024), Image.Resampling.BILINEAR))
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=95)
    out = decode_image(tmp_path / "big.jpg", size=SIZE)
    assert np.abs(out.astype(int) - reference(big).astype(int)).max() <= 12


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_corrupt_files_are_one_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.png"
    if content is None:  # a real PNG cut in half
        Image.fromarray(gradient(64, 64)).save(path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"broken\.png: not a readable image") as err:
        decode_image(path, size=SIZE)
    assert "\n" not in str(err.value)


def test_missing_file_and_decompression_bomb(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="no such image file"):
        decode_image(tmp_path / "gone.png", size=SIZE)
    Image.fromarray(gradient(64, 64)).save(tmp_path / "wide.png")
    monkeypatch.setattr("divekit.data.image_decode.MAX_PIXELS", 64 * 63)
    with pytest.raises(DataError, match="64x64 pixels is over the 4,032-pixel limit"):
        decode_image(tmp_path / "wide.png", size=SIZE)
