"""The book-table benchmarks' settings resolve against today's config (issue 16.5), without training.

A renamed config key (the re-cut moved image options to ``task.options.*``)
must fail here on the CPU, not hours into a GPU run: every row of
``benchmarks/gpu_book.py`` (GPU settings and its ``--dry-run``) and of
``benchmarks/book_table.py`` is resolved and checked.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def scripts(request):
    sys.path.insert(0, str(BENCHMARKS))
    request.addfinalizer(lambda: sys.path.remove(str(BENCHMARKS)))
    return importlib.import_module("gpu_book"), importlib.import_module("book_table")


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_gpu_book_row_resolves(scripts, dry_run):
    gpu_book, _ = scripts
    args = argparse.Namespace(fashion="fm", timemachine="tm", fra_eng="fe", device="cpu" if dry_run else "cuda",
                              precision="bf16", compile=False, dry_run=dry_run)  # fmt: skip
    configs = gpu_book.row_configs(args)
    assert len(configs) == len(gpu_book.CNN_ROWS) + len(gpu_book.LM_ROWS) + len(gpu_book.TRANSLATION_MODELS)
    lenet = configs["cnn/LeNet"]
    assert (lenet.model.name, lenet.optim.lr, lenet.data.batch_size, lenet.task.options["resize"]) == ("lenet", 0.9, 256, 28)
    assert lenet.train.epochs == (1 if dry_run else 10) and lenet.train.precision == "bf16"
    assert all(c.train.device == args.device for c in configs.values())
    alexnet = configs["cnn/AlexNet"].task.options
    assert alexnet["resize"] == (67 if dry_run else 224) and ("train_subset" in alexnet) == dry_run


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_every_book_table_row_resolves_to_the_books_recipe(scripts, profile):
    _, book_table = scripts
    args = argparse.Namespace(data_dir="fm", device="cpu", threads=None, dry_run=False)
    for label, (size, epochs) in book_table.PROFILES[profile].items():
        config = book_table.row_config(label, size, epochs, args)  # asserts the book's lr and batch
        assert (config.task.options["resize"], config.train.epochs) == (size, epochs)
