"""Decode one image file into a uint8 array of a chosen size, whatever its format and mode.

The rules, the same for every file:

- **orientation**: the EXIF orientation tag is applied (``ImageOps.exif_transpose``),
  so a photo taken with the camera turned is upright, as viewers show it;
- **channels**: grayscale modes (1-bit, 8-bit ``L``, 16-bit ``I;16``/``I``) give one
  channel, everything else (RGB, CMYK, palette...) three, unless a count is asked
  for (a model's input): colour becomes luma (ITU-R 601, Pillow's ``L``), gray is repeated;
- **16-bit** gray is scaled to 8 bits (``v / 257``, rounded), where Pillow's
  ``convert("L")`` would clip everything above 255 to white;
- **transparency** (RGBA, LA, a palette with a transparent colour) is composited
  onto white, so transparent pixels look as they do on a page instead of
  showing whatever colour they happen to store;
- **size**: the whole image is resized to ``size x size`` (bilinear, antialiased
  when shrinking), as ``divekit predict`` resizes the images it classifies;
  the aspect ratio is not kept.

Files are checked before they are decoded: a picture of more than
:data:`MAX_PIXELS` pixels (a decompression bomb) is refused. Anything Pillow
cannot read becomes a :class:`~divekit.errors.DataError` that names the file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from divekit.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".pgm", ".ppm")
MAX_PIXELS = 64 * 1024 * 1024  # far above any photo; refuses decompression bombs before decoding
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
WHITE = 255


def is_image_file(path: Path) -> bool:
    """Whether ``path``'s suffix is one of :data:`IMAGE_SUFFIXES` (any case) and it is not hidden."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def decode_image(path: Path, *, size: int, channels: int | None = None) -> np.ndarray:
    """``path`` as uint8 ``(C, size, size)``: ``C`` is ``channels`` if given, else 1 for grayscale and 3 for colour.

    Raises:
        DataError: the file is missing, not an image, truncated or corrupt, or too large.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(f"{path}: {width}x{height} pixels is over the {MAX_PIXELS:,}-pixel limit "
                                "(a decompression bomb?); shrink it first")  # fmt: skip
            if image.format == "JPEG":
                image.draft(image.mode, (size, size))  # decode a large JPEG at a reduced scale directly
            return to_array(upright(image, path), size, channels)
    except DataError:
        raise
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such image file") from err
    except Exception as err:  # Pillow's format plugins raise many types on malformed files; all mean "bad file"
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: not a readable image ({reason})") from err


def upright(image, path: Path):  # noqa: ANN001, ANN201  (PIL images)
    """``image`` turned as its EXIF orientation says; damaged metadata is reported, not guessed around."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image)
    except (ValueError, TypeError, KeyError, SyntaxError, struct.error) as err:
        raise DataError(f"{path}: unreadable EXIF metadata ({type(err).__name__}: {err}); re-save the image "
                        "without it") from err  # fmt: skip


def to_array(image, size: int, channels: int | None = None) -> np.ndarray:  # noqa: ANN001  (a PIL image)
    """A decoded PIL image as uint8 ``(C, size, size)`` (``C``: see :func:`decode_image`)."""
    from PIL import Image

    if image.mode in WIDE_GRAY_MODES or image.mode == "F":
        scale = 257.0 if image.mode in WIDE_GRAY_MODES else 1.0
        values = Image.fromarray(np.asarray(image, dtype=np.float32) / scale, mode="F")
        resized = np.asarray(values.resize((size, size), Image.Resampling.BILINEAR))
        gray = np.clip(np.rint(resized), 0, 255).astype(np.uint8)[None]  # (1, size, size)
        return gray if channels in (None, 1) else np.repeat(gray, channels, axis=0)
    gray = image.mode in GRAY_MODES if channels is None else channels == 1
    image = flatten_alpha(image, gray=gray)
    image = image.convert("L" if gray else "RGB").resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if gray else array.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def flatten_alpha(image, *, gray: bool):  # noqa: ANN001, ANN201  (PIL images)
    """``image`` composited onto white if it has transparency, else unchanged."""
    from PIL import Image

    has_alpha = image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info
    if not has_alpha:
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, 255))
    flat = Image.alpha_composite(background, rgba)
    return flat.convert("L" if gray else "RGB")
