"""Hypothesis strategies for small, readable float64 examples.

Entries are multiples of 0.5 in [-3, 3]: exact in float64, and they shrink
towards 0, so the smallest failing example reads like ``[[0, 1], [0, 0]]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from hypothesis import strategies as st

DTYPE = torch.float64


def tensors(shape: Sequence[int], *, low: int = -6, high: int = 6, scale: float = 0.5) -> st.SearchStrategy:
    """A float64 tensor of ``shape`` with entries ``scale * k`` for integers ``k`` in ``[low, high]``."""
    count = math.prod(shape)
    values = st.lists(st.integers(low, high), min_size=count, max_size=count)
    return values.map(lambda v: (torch.tensor(v, dtype=DTYPE) * scale).reshape(tuple(shape)))


def distinct_tensors(shape: Sequence[int]) -> st.SearchStrategy:
    """A float64 tensor of ``shape`` whose entries are all different (no ties for a max to break)."""
    count = math.prod(shape)
    return st.permutations(range(count)).map(lambda v: torch.tensor(v, dtype=DTYPE).reshape(tuple(shape)) / 2)


def lengths(size: int, count: int) -> st.SearchStrategy:
    """``count`` valid lengths in ``[0, size]`` as a long tensor."""
    return st.lists(st.integers(0, size), min_size=count, max_size=count).map(
        lambda v: torch.tensor(v, dtype=torch.long))


def seeds() -> st.SearchStrategy:
    """A seed for the parameters of a module (shrinks to 0)."""
    return st.integers(0, 2**16)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def cotangent(like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Fixed random weights for the outputs, so ``(Y * weights).sum()`` tests every entry's gradient."""
    return torch.randn(like.shape, generator=generator(seed + 7919), dtype=DTYPE)
