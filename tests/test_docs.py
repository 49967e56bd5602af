"""The Python examples of the docs run as written (each page's blocks in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["own-model.md"]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("page", PAGES)
def test_the_python_blocks_run(page, tmp_path, monkeypatch):
    from divekit.models import MODELS

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))  # what the page registers stays here
    monkeypatch.setattr(MODELS, "_modules", dict(MODELS._modules))
    blocks = python_blocks(DOCS / page)
    assert blocks
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{page}[block {i + 1}]", "exec"), namespace)  # noqa: S102
