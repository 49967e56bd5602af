"""Shared fixtures: keep tests off the user's cache and away from the network."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import serve_folder

@pytest.fixture(autouse=True)
def _isolated_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the data cache at a temporary folder; no test downloads from the internet."""
    monkeypatch.setenv("DIVEKIT_DATA", str(tmp_path_factory.mktemp("divekit-data")))
    monkeypatch.setenv("DIVEKIT_HOME", str(tmp_path_factory.mktemp("divekit-home")))
    monkeypatch.delenv("DIVEKIT_MIRROR", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def http_folder(tmp_path):
    """A local mirror: ``tmp_path/served`` over HTTP on 127.0.0.1; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    with serve_folder(served) as url:
        yield served, url
