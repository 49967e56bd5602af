"""Decode one image file into a uint8 array of a chosen size, whatever its format and mode.

The rules, the same for every file:

- **orientation**: the EXIF orientation tag is applied (``ImageOps.exif_transpose``),
  so a photo taken with the camera turned is upright, as viewers show it;
- **channels**: grayscale modes (1-bit, 8-bit ``L``, 16-bit ``I;16``/``I``) give one
  channel, everything else (RGB, CMYK, palette...) three;
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

from pathlib import Path

import numpy as np

from divekit.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
MAX_PIXELS = 64 * 1024 * 1024  # far above any photo; refuses decompression bombs before decoding
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
WHITE = 255


def is_image_file(path: Path) -> bool:
    """Whether ``path``'s suffix is one of :data:`IMAGE_SUFFIXES` (any case) and it is not hidden."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def decode_image(path: Path, *, size: int) -> np.ndarray:
    """``path`` as uint8 ``(C, size, size)`` with ``C`` 1 (grayscale) or 3 (see the module docstring).

    Raises:
        DataError: the file is missing, not an image, truncated or corrupt, or too large.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(f"{path}: {width}x{height} pixels is over the {MAX_PIXELS:,}-pixel limit "
                                "(a decompression bomb?); shrink it first")  # fmt: skip
            if image.format == "JPEG":
                image.draft(image.mode, (size, size))  # decode a large JPEG at a reduced scale directly
            return to_array(ImageOps.exif_transpose(image), size)
    except DataError:
        raise
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such image file") from err
    except Exception as err:  # Pillow's format plugins raise many types on malformed files; all mean "bad file"
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: not a readable image ({reason})") from err


def to_array(image, size: int) -> np.ndarray:  # noqa: ANN001  (a PIL image; PIL is imported lazily)
    """A decoded PIL image as uint8 ``(C, size, size)``."""
    from PIL import Image

    if image.mode in WIDE_GRAY_MODES or image.mode == "F":
        scale = 257.0 if image.mode in WIDE_GRAY_MODES else 1.0
        values = Image.fromarray(np.asarray(image, dtype=np.float32) / scale, mode="F")
        resized = np.asarray(values.resize((size, size), Image.Resampling.BILINEAR))
        return np.clip(np.rint(resized), 0, 255).astype(np.uint8)[None]  # (1, size, size)
    gray = image.mode in GRAY_MODES
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
