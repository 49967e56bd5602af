"""Data augmentation on whole batches (notes §4 数据增广).

Augmentation makes each epoch see a slightly different version of every
image (flipped, cropped and rescaled, recoloured), so the network learns
what does not change under these transformations and generalises better.

torchvision's transforms v2 draw *one* set of random parameters per call,
so applied to a batch tensor they would flip, crop or recolour every image of
the batch the same way. :class:`BatchAugment` draws the parameters *per image*
(with the same distributions as ``RandomHorizontalFlip``,
``RandomResizedCrop`` and ``ColorJitter``) and applies them to the whole
batch at once on the training device: the flip of the whole batch
selected per image with one ``where``; one ``grid_sample`` for all the
crops; one per-image blend for each colour adjustment. It is plain torch:
importing torchvision would cost seconds at every start (its package
imports its models, and through them ``torch._dynamo``). The tests check
every image against torchvision's v2 functional ops applied to it alone
with the same parameters.

Randomness comes only from the ``torch.Generator`` passed in, so a batch's
augmentation is a pure function of its seed: :class:`SeededBatches` gives
every batch a seed made from (run seed, epoch, batch index), which
keeps runs reproducible and resumed runs bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from divekit.data.batching import BatchSeed
from divekit.errors import ConfigError

AUGMENTATIONS = ("flip", "crop", "color")
CROP_ATTEMPTS = 10
# ITU-R BT.601 luma weights of R, G, B: the grey that colour adjustments blend towards (as torchvision's).
LUMA_WEIGHTS = (0.2989, 0.587, 0.114)


@dataclass
class AugmentParams:
    """Random parameters of one batch, one entry per image (CPU tensors)."""

    flip: torch.Tensor | None = None  # (N,) bool
    boxes: torch.Tensor | None = None  # (N, 4) int64: top, left, height, width
    color: torch.Tensor | None = None  # (N, 4) float: brightness, contrast, saturation, hue
    color_order: torch.Tensor | None = None  # (N, 4) int64: a permutation of the four adjustments

    def select(self, rows: slice) -> AugmentParams:
        """The parameters of ``rows`` only."""
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        return AugmentParams(pick(self.flip), pick(self.boxes), pick(self.color), pick(self.color_order))


def parse_augment(names: str | Sequence[str]) -> list[str]:
    """``"flip,crop"`` or ``["flip", "crop"]`` -> a checked list (ConfigError for unknown names)."""
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in items if n not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(AUGMENTATIONS)} "
                          "(e.g. task.options.augment=flip,crop,color)")  # fmt: skip
    return list(dict.fromkeys(items))


def _uniform(n: int, low: float, high: float, generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(n, *shape, generator=generator, dtype=torch.float64) * (high - low) + low


def sample_crop_boxes(n: int, height: int, width: int, *, scale: Sequence[float], ratio: Sequence[float],
                      generator: torch.Generator) -> torch.Tensor:  # fmt: skip
    """``RandomResizedCrop``'s box distribution, for ``n`` images at once.

    Each image tries up to 10 (area fraction ~ U(scale), log aspect ratio ~
    U(log ratio)) boxes and keeps the first that fits; if none fits it takes
    the largest centred box within ``ratio``. Returns ``(n, 4)``: top, left,
    height, width.
    """
    area = _uniform(n, scale[0], scale[1], generator, CROP_ATTEMPTS) * height * width
    aspect = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, CROP_ATTEMPTS))
    w = torch.sqrt(area * aspect).round().long()
    h = torch.sqrt(area / aspect).round().long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)  # (n, attempts)
    first = fits.long().argmax(dim=1, keepdim=True)  # index of the first box that fits
    h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)
    fallback_h, fallback_w = _central_box(height, width, ratio)
    none_fit = ~fits.any(dim=1)
    h, w = torch.where(none_fit, fallback_h, h), torch.where(none_fit, fallback_w, w)
    top = (torch.rand(n, generator=generator, dtype=torch.float64) * (height - h + 1)).floor().long()
    left = (torch.rand(n, generator=generator, dtype=torch.float64) * (width - w + 1)).floor().long()
    top, left = torch.where(none_fit, (height - h) // 2, top), torch.where(none_fit, (width - w) // 2, left)
    return torch.stack([top, left, h, w], dim=1)


def _central_box(height: int, width: int, ratio: Sequence[float]) -> tuple[int, int]:
    """The whole image, narrowed to the nearest allowed aspect ratio."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return int(round(width / min(ratio))), width
    if in_ratio > max(ratio):
        return height, int(round(height * max(ratio)))
    return height, width


def resized_crop(X: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Cut box ``i`` out of image ``i`` and resize it to ``size x size`` (bilinear), for a whole batch.

    Output pixel ``j`` of a box of width ``w`` starting at ``left`` samples
    the input at ``left + (j + 0.5) * w / size - 0.5`` (half-pixel centres,
    as ``F.interpolate(align_corners=False)``), clamped to the box, so each
    image equals torchvision's ``resized_crop(..., antialias=False)``.

    Args:
        X: images ``(N, C, H, W)``, floating point.
        boxes: ``(N, 4)`` integer top, left, height, width.
        size: side of the square output.
    """
    N, _, H, W = X.shape
    top, left, h, w = (boxes.to(X.device, torch.float64).unbind(1))
    steps = (torch.arange(size, device=X.device, dtype=torch.float64) + 0.5) / size  # (size,)
    ys = top[:, None] + (steps[None] * h[:, None] - 0.5).clamp(min=0).minimum(h[:, None] - 1)  # (N, size)
    xs = left[:, None] + (steps[None] * w[:, None] - 0.5).clamp(min=0).minimum(w[:, None] - 1)
    # grid_sample's normalised coordinates with align_corners=False: pixel x -> (2x + 1) / W - 1.
    gx = ((2 * xs + 1) / W - 1)[:, None, :].expand(N, size, size)  # (N, size, size)
    gy = ((2 * ys + 1) / H - 1)[:, :, None].expand(N, size, size)
    grid = torch.stack([gx, gy], dim=-1).to(X.dtype)  # (N, size, size, 2): x then y
    return F.grid_sample(X, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(X: torch.Tensor) -> torch.Tensor:
    """Luma ``(N, 1, H, W)`` of RGB images ``(N, 3, H, W)`` (as v2's ``rgb_to_grayscale``); gray stays gray."""
    if X.shape[1] == 1:
        return X
    r, g, b = X.unbind(dim=1)
    wr, wg, wb = LUMA_WEIGHTS
    return (r * wr + g * wg + b * wb).unsqueeze(1)


def _blend(X: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * X + (1 - factor) * other``, clamped to [0, 1]; ``factor`` is per image ``(N,)``."""
    f = factor.reshape(-1, 1, 1, 1)
    return (f * X + (1 - f) * other).clamp_(0.0, 1.0)


def adjust_brightness(X: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale every pixel by ``factor`` (per image): 0 gives black, 1 the image."""
    return _blend(X, torch.zeros_like(X), factor)


def adjust_contrast(X: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean gray level: 0 gives flat gray, 1 the image."""
    return _blend(X, grayscale(X).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(X: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the grayscale image: 0 gives gray, 1 the image (gray images are unchanged)."""
    return X if X.shape[1] == 1 else _blend(X, grayscale(X), factor)


def adjust_hue(X: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` turns (in [-0.5, 0.5], per image) in HSV space.

    HSV from RGB: ``V = max``, ``S = (max - min) / V``, and the hue from
    which channel is largest; back with ``f(n) = V - V S clamp(min(k, 4 - k), 0, 1)``,
    ``k = (n + 6 H) mod 6`` for ``n = 5, 3, 1`` (R, G, B).
    """
    if X.shape[1] == 1:
        return X
    R, G, B = X.unbind(dim=1)
    V, _ = X.max(dim=1)
    chroma = V - X.min(dim=1).values
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(V == R, ((G - B) / safe) % 6, torch.where(V == G, (B - R) / safe + 2, (R - G) / safe + 4))
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    S = chroma / torch.where(V > 0, V, torch.ones_like(V))
    hue = (hue + shift.reshape(-1, 1, 1)) % 1.0  # (N, H, W)
    channels = []
    for n in (5, 3, 1):
        k = (n + hue * 6) % 6
        channels.append(V - V * S * torch.minimum(k, 4 - k).clamp(0, 1))
    return torch.stack(channels, dim=1)


COLOR_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


class BatchAugment:
    """Random flip, resized crop and colour jitter, drawn per image, applied per batch.

    Args:
        names: which augmentations, from ``flip``, ``crop`` and ``color``.
        size: side of the output images; with ``crop`` the crops are resized
            to it, otherwise the (augmented) batch is resized to it.
        crop_scale: range of the crop's area, as a fraction of the image.
        crop_ratio: range of the crop's aspect ratio (width / height).
        jitter: maximal relative change of brightness, contrast and
            saturation, and the maximal hue shift (in turns).
        flip_p: probability of a horizontal flip.
    """

    def __init__(self, names: Sequence[str], *, size: int, crop_scale: Sequence[float] = (0.5, 1.0),
                 crop_ratio: Sequence[float] = (3 / 4, 4 / 3), jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.1),
                 flip_p: float = 0.5) -> None:  # fmt: skip
        self.names = parse_augment(names)
        _check_range("crop_scale", crop_scale, 0.0, 1.0)
        _check_range("crop_ratio", crop_ratio, 0.0, math.inf)
        if len(jitter) != 4 or min(jitter) < 0 or jitter[3] > 0.5:
            raise ConfigError("color_jitter needs 4 values >= 0 (brightness, contrast, saturation, "
                              f"hue <= 0.5), got {list(jitter)}")
        if size < 1:
            raise ConfigError(f"augmentation output size must be positive, got {size}")
        self.size, self.crop_scale, self.crop_ratio = size, tuple(crop_scale), tuple(crop_ratio)
        self.jitter, self.flip_p = tuple(jitter), flip_p

    def sample(self, n: int, height: int, width: int, generator: torch.Generator) -> AugmentParams:
        """Draw the parameters of ``n`` images of ``height x width``."""
        params = AugmentParams()
        if "flip" in self.names:
            params.flip = torch.rand(n, generator=generator) < self.flip_p
        if "crop" in self.names:
            params.boxes = sample_crop_boxes(n, height, width, scale=self.crop_scale, ratio=self.crop_ratio,
                                             generator=generator)  # fmt: skip
        if "color" in self.names:
            b, c, s, h = self.jitter
            lows = torch.tensor([max(0.0, 1 - b), max(0.0, 1 - c), max(0.0, 1 - s), -h])
            highs = torch.tensor([1 + b, 1 + c, 1 + s, h])
            params.color = lows + torch.rand(n, 4, generator=generator) * (highs - lows)
            params.color_order = torch.rand(n, 4, generator=generator).argsort(dim=1)
        return params

    def apply(self, X: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Augment float images ``(N, C, H, W)`` in [0, 1] with ``params``; returns ``(N, C, size, size)``."""
        if params.boxes is not None:
            X = resized_crop(X, params.boxes, self.size)
        elif tuple(X.shape[-2:]) != (self.size, self.size):
            X = F.interpolate(X, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=self.size < X.shape[-1])  # fmt: skip
        if params.flip is not None:
            X = torch.where(params.flip.to(X.device).reshape(-1, 1, 1, 1), X.flip(-1), X)
        if params.color is not None:
            X = self._jitter(X, params.color.to(X.device, X.dtype), params.color_order.to(X.device))
        return X

    @staticmethod
    def _jitter(X: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Four rounds; in round ``r`` each image gets the adjustment ``order[i, r]`` (ColorJitter's random order)."""
        X = X.clone()
        for step in range(4):
            for op_index, op in enumerate(COLOR_OPS):
                rows = (order[:, step] == op_index).nonzero().squeeze(1)
                if len(rows):
                    X[rows] = op(X[rows], factors[rows, op_index])
        return X

    def __call__(self, X: torch.Tensor, *, generator: torch.Generator, total: int | None = None,
                 rows: slice = slice(None)) -> torch.Tensor:  # fmt: skip
        """Augment ``X``: the ``rows`` of a batch of ``total`` images (default: ``X`` is the whole batch).

        Parameters are drawn for all ``total`` images, so a process holding a
        share of a batch augments its rows exactly as one process holding the
        whole batch would.
        """
        params = self.sample(total or X.shape[0], X.shape[-2], X.shape[-1], generator)
        return self.apply(X, params.select(rows))

    def __repr__(self) -> str:
        return (f"BatchAugment({','.join(self.names)}, size={self.size}, crop_scale={self.crop_scale}, "
                f"crop_ratio={tuple(round(r, 3) for r in self.crop_ratio)}, jitter={self.jitter})")  # fmt: skip


def _check_range(name: str, values: Sequence[float], low: float, high: float) -> None:
    if len(values) != 2 or not low < values[0] <= values[1] <= high:
        raise ConfigError(f"{name} must be two numbers with {low} < min <= max <= {high}, got {list(values)}")


def batch_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends only on (run seed, epoch, batch index)."""
    value = seed
    for part in (epoch, index, 0):  # the trailing 0 keeps the seeds of runs made before sharding moved
        value = (value * 1_000_003 + part) % (1 << 63)
    return value


class SeededBatches:
    """A training loader whose batches carry their own augmentation seed: ``(*tensors, BatchSeed)``.

    Wraps a loader with ``set_epoch``/``iter_from``/``len`` (``TensorBatches``);
    the seed of batch ``i`` of epoch ``e`` is :func:`batch_seed`, so any batch
    can be replayed exactly, e.g. after resuming mid-epoch, and every process
    of a distributed run draws the same parameters for the whole batch.
    """

    def __init__(self, batches, *, seed: int) -> None:
        self.batches, self.seed, self.epoch = batches, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.batches.set_epoch(epoch)

    def iter_from(self, start_batch: int = 0) -> Iterator[tuple]:
        for index, batch in enumerate(self.batches.iter_from(start_batch), start=start_batch):
            yield (*batch, BatchSeed(batch_seed(self.seed, self.epoch, index), total=len(batch[0])))

    def __iter__(self) -> Iterator[tuple]:
        return self.iter_from(0)

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def last_batch_rows(self) -> int | None:
        return getattr(self.batches, "last_batch_rows", None)
