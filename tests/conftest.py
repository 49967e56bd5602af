"""Shared fixtures: keep tests off the user's cache and away from the network."""

from __future__ import annotations

import pytest
import torch

@pytest.fixture(autouse=True)
def _isolated_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the data cache at a temporary folder; no test downloads from the internet."""
    monkeypatch.setenv("DIVEKIT_DATA", str(tmp_path_factory.mktemp("divekit-data")))
    monkeypatch.delenv("DIVEKIT_MIRROR", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
