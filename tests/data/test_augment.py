"""Batch augmentation equals torchvision's v2 ops image by image, and is a pure function of its seed."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from divekit.data.augment import (
    BatchAugment,
    SeededBatches,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    parse_augment,
    resized_crop,
    sample_crop_boxes,
)
from divekit.data.loader import TensorBatches
from divekit.errors import ConfigError


def images(n: int = 6, channels: int = 3, size: int = 12) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(channels))


@pytest.mark.parametrize(("ours", "theirs"), [
    (adjust_brightness, TF.adjust_brightness), (adjust_contrast, TF.adjust_contrast),
    (adjust_saturation, TF.adjust_saturation), (adjust_hue, TF.adjust_hue),
])  # fmt: skip
@pytest.mark.parametrize("channels", [1, 3])
def test_color_ops_match_torchvision_per_image(ours, theirs, channels):
    X = images(channels=channels)
    factors = torch.linspace(-0.45, 0.45, len(X)) if ours is adjust_hue else torch.linspace(0.2, 1.8, len(X))
    out = ours(X, factors)
    for i in range(len(X)):
        torch.testing.assert_close(out[i], theirs(X[i], float(factors[i])), atol=2e-6, rtol=0)


def test_hue_shift_handles_gray_and_saturated_pixels():
    X = torch.tensor([[[[0.5, 1.0, 0.0, 1.0]]], [[[0.5, 0.0, 0.0, 1.0]]], [[[0.5, 0.0, 1.0, 0.0]]]]).permute(1, 0, 2, 3)
    for shift in (-0.5, -0.2, 0.0, 1 / 3, 0.5):
        torch.testing.assert_close(adjust_hue(X, torch.tensor([shift])), TF.adjust_hue(X[0], shift)[None], atol=2e-6, rtol=0)


@pytest.mark.parametrize("out_size", [8, 12, 20])
def test_resized_crop_matches_torchvision_without_antialias(out_size):
    X = images(n=5, channels=2, size=12)
    boxes = torch.tensor([[0, 0, 12, 12], [2, 3, 5, 7], [6, 1, 6, 11], [0, 9, 3, 3], [4, 4, 1, 1]])
    out = resized_crop(X, boxes, out_size)
    assert out.shape == (5, 2, out_size, out_size)
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        ref = TF.resized_crop(X[i], top, left, h, w, [out_size, out_size], antialias=False)
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_crop_boxes_follow_random_resized_crop():
    g = torch.Generator().manual_seed(0)
    boxes = sample_crop_boxes(4000, 28, 28, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3), generator=g)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 28).all() and (left + w <= 28).all()
    area, aspect = (h * w).double() / 28**2, w.double() / h
    torch.manual_seed(0)  # torchvision's sampler, for the reference distribution
    ref = torch.tensor([v2.RandomResizedCrop.get_params(torch.zeros(1, 28, 28), [0.25, 1.0], [3 / 4, 4 / 3])
                        for _ in range(4000)], dtype=torch.float64)  # fmt: skip
    ref_area, ref_aspect = ref[:, 2] * ref[:, 3] / 28**2, ref[:, 3] / ref[:, 2]
    assert area.min() >= 0.2 and area.max() <= 1.0
    assert abs(area.mean() - ref_area.mean()) < 0.015 and abs(area.std() - ref_area.std()) < 0.015
    assert abs(aspect.mean() - ref_aspect.mean()) < 0.02
    assert abs((top + h / 2).mean() - (ref[:, 0] + ref[:, 2] / 2).mean()) < 0.3  # centred on average


def test_impossible_ratio_falls_back_to_the_central_box():
    g = torch.Generator().manual_seed(0)
    boxes = sample_crop_boxes(3, 10, 40, scale=(0.9, 1.0), ratio=(1.0, 1.0), generator=g)
    assert boxes.tolist() == [[0, 15, 10, 10]] * 3


def test_each_image_gets_its_own_parameters_and_the_seed_fixes_them():
    augment = BatchAugment(["flip", "crop", "color"], size=12)
    X = images(n=64).clone()
    X[:] = X[0]  # 64 copies of one image
    out = augment(X, generator=torch.Generator().manual_seed(5))
    assert len({tuple(o.flatten()[:20].tolist()) for o in out}) == 64  # all different
    again = augment(X, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, again)
    params = augment.sample(64, 12, 12, torch.Generator().manual_seed(5))
    assert 10 < int(params.flip.sum()) < 54
    assert sorted(params.color_order[0].tolist()) == [0, 1, 2, 3]


def test_batch_equals_torchvision_v2_applied_image_by_image():
    augment = BatchAugment(["crop", "flip", "color"], size=10, crop_scale=(0.3, 1.0))
    X = images(n=8, size=12)
    params = augment.sample(8, 12, 12, torch.Generator().manual_seed(1))
    out = augment.apply(X, params)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i in range(8):
        top, left, h, w = params.boxes[i].tolist()
        ref = TF.resized_crop(X[i], top, left, h, w, [10, 10], antialias=False)
        ref = TF.horizontal_flip(ref) if params.flip[i] else ref
        for op_index in params.color_order[i].tolist():
            ref = ops[op_index](ref, float(params.color[i, op_index]))
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_without_crop_the_batch_is_resized():
    out = BatchAugment(["flip"], size=20)(images(size=12), generator=torch.Generator().manual_seed(0))
    assert out.shape == (6, 3, 20, 20)


def test_seeded_batches_replay_any_batch():
    base = TensorBatches((torch.arange(20),), batch_size=4, shuffle=True, seed=3)
    loader = SeededBatches(base, seed=3)
    loader.set_epoch(2)
    full = list(loader)
    assert len(full) == len(loader) == 5
    replay = list(loader.iter_from(3))
    assert [b[1] for b in replay] == [b[1] for b in full[3:]]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(replay, full[3:]))
    assert len({b[-1].seed for b in full}) == 5 and all(b[-1].total == len(b[0]) for b in full)
    loader.set_epoch(3)
    assert {b[-1].seed for b in loader}.isdisjoint({b[-1].seed for b in full})
    other_seed = SeededBatches(TensorBatches((torch.arange(20),), batch_size=4, shuffle=True, seed=3), seed=4)
    other_seed.set_epoch(2)
    assert [b[-1].seed for b in other_seed] != [b[-1].seed for b in full]


@pytest.mark.parametrize(("bad", "message"), [
    ({"names": ["flip", "rotate"]}, "unknown augmentation 'rotate'"),
    ({"crop_scale": (0.0, 1.0)}, "crop_scale"),
    ({"crop_scale": (0.8, 0.5)}, "crop_scale"),
    ({"jitter": (0.4, 0.4, 0.4, 0.7)}, "color_jitter"),
])  # fmt: skip
def test_bad_settings_are_one_clear_error(bad, message):
    kwargs = {"names": ["flip"], "size": 8, **bad}
    with pytest.raises(ConfigError, match=message):
        BatchAugment(kwargs.pop("names"), **kwargs)


def test_parse_augment_accepts_commas_and_lists():
    assert parse_augment("flip, crop,,color,flip") == ["flip", "crop", "color"]
    assert parse_augment(["color"]) == ["color"]


def test_v2_on_a_batch_would_share_parameters():
    """Why BatchAugment exists: a v2 transform on a batch tensor flips all images or none."""
    X = images(n=32)
    torch.manual_seed(0)
    flipped = v2.RandomHorizontalFlip(p=0.5)(X)
    same = [torch.equal(flipped[i], X[i]) for i in range(32)]
    assert all(same) or not any(same)
