"""The notes as notebooks: each one runs top to bottom in a Jupyter kernel, and is stored without outputs.

Every notebook's cells end with assertions on what they teach (scratch equals concise, accuracy above a floor,
perplexity below a ceiling), so a cell error here is a broken lesson.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_there_is_one_notebook_per_chapter_of_the_notes():
    assert [p.name for p in NOTEBOOKS] == ["01_pytorch_basics.ipynb", "02_cnn.ipynb", "03_augmentation_finetuning.ipynb",
                                           "04_sequence_models.ipynb", "05_attention_transformer.ipynb"]  # fmt: skip


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs_and_headed_in_both_languages(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"
    title = nb.cells[0].source.splitlines()[0]
    assert title.startswith("# ") and CJK.search(title) and re.search(r"[A-Za-z]{4,}", title)


CHECKED = {"01_pytorch_basics": "sequential", "02_cnn": "corr2d", "04_sequence_models": "rnn-cell",
           "05_attention_transformer": "masked-softmax"}  # fmt: skip  (no check concept for augmentation)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_graded_by_divekit_check(path):
    nbformat = pytest.importorskip("nbformat")
    from divekit.check.catalogue import CONCEPTS

    nb = nbformat.read(path, as_version=4)
    found = [(i, re.search(r"<!-- divekit-check: (\S+) -->", c.source)) for i, c in enumerate(nb.cells)]
    marked = [(i, m[1]) for i, m in found if m]
    assert [concept for _, concept in marked] == ([CHECKED[path.stem]] if path.stem in CHECKED else [])
    for i, concept in marked:
        assert concept in CONCEPTS
        graded = nb.cells[i + 1]
        assert graded.cell_type == "code" and re.search(rf'check\(\w+, "{concept}"\)', graded.source)
        assert "assert report.passed" in graded.source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_top_to_bottom(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any failing cell
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the figures show inline"
