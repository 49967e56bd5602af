"""Hypothesis strategies for small, readable float64 examples.

Entries are multiples of 0.5 in [-3, 3]: exact in float64 and short to
read. Shapes are drawn first and shrink to the smallest that fails.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from hypothesis import strategies as st

DTYPE = torch.float64


def tensors(shape: Sequence[int], *, low: int = -6, high: int = 6, scale: float = 0.5) -> st.SearchStrategy:
    """A float64 tensor of ``shape`` with entries ``scale * k``, ``k`` a random integer in ``[low, high]``.

    Hypothesis draws one seed per tensor, not one choice per entry: shrinking
    then works on the shapes (to the smallest that fails) and the seeds, and
    stays fast for examples with many tensors (an LSTM has 14 parameters).
    """
    return _tensors(tuple(shape), low, high, scale)


@functools.lru_cache(maxsize=4096)
def _tensors(shape: tuple[int, ...], low: int, high: int, scale: float) -> st.SearchStrategy:
    # cached: hypothesis validates every new strategy object, which costs more than drawing from it
    return SEEDS.map(lambda seed: values(shape, seed, low=low, high=high, scale=scale))


def values(shape: tuple[int, ...], seed: int, *, low: int = -6, high: int = 6, scale: float = 0.5) -> torch.Tensor:
    ints = torch.randint(low, high + 1, shape, generator=generator(seed))
    return ints.to(DTYPE) * scale


@functools.lru_cache(maxsize=1024)
def distinct_tensors(shape: tuple[int, ...]) -> st.SearchStrategy:
    """A float64 tensor of ``shape`` whose entries are all different (no ties for a max to break)."""
    count = math.prod(shape)
    return SEEDS.map(lambda seed: torch.randperm(count, generator=generator(seed)).to(DTYPE).reshape(shape) / 2)


def lengths(size: int, count: int) -> st.SearchStrategy:
    """``count`` valid lengths in ``[0, size]`` as a long tensor."""
    return st.lists(st.integers(0, size), min_size=count, max_size=count).map(
        lambda v: torch.tensor(v, dtype=torch.long))


SEEDS = st.integers(0, 63)


def seeds() -> st.SearchStrategy:
    """A seed for the parameters of a module (shrinks to 0)."""
    return SEEDS


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def cotangent(like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Fixed random weights for the outputs, so ``(Y * weights).sum()`` tests every entry's gradient."""
    return torch.randn(like.shape, generator=generator(seed + 7919), dtype=DTYPE)
