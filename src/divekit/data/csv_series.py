"""``csv-series``: one numeric column of a CSV file, as a series for the §6.1 forecasting models.

The file is read whole (comma-, semicolon- or tab-separated, UTF-8, a header
row naming the columns; without one, columns are named ``1``, ``2``...). The
column is chosen by name (``task.options.column``; a file with a single
numeric column needs none). Its values, in file order, form the series; as in
the book (600 of 1,000 points), the first 60% train and the rest test.

Values are standardised with the mean and standard deviation of the training
part only (nothing is learnt from the test part), so one recipe suits prices
in thousands as well as a sine; ``task.json`` records both numbers.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from divekit.data.registry import register_dataset
from divekit.data.series import SeriesData
from divekit.io import read_text
from divekit.errors import ConfigError, DataError

TRAIN_FRACTION = 0.6  # the book: 600 of 1,000
MAX_BYTES = 512 * 1024 * 1024
MIN_VALUES = 10


@dataclass
class CsvTable:
    """The cells of a CSV file, by column name (values still text)."""

    path: Path
    columns: dict[str, list[str]]
    has_header: bool
    task: str = "regression"

    def numeric_columns(self) -> list[str]:
        """Columns whose every non-empty cell is a finite number."""
        return [name for name, cells in self.columns.items() if cells and all(_number(c) is not None for c in cells)]

    def series(self, column: str | None) -> SeriesData:
        """Column ``column`` (or the only numeric one) as a standardised :class:`SeriesData`."""
        name = self._choose(column)
        values = []
        for row, cell in enumerate(self.columns[name], start=2 if self.has_header else 1):
            value = _number(cell)
            if value is None:
                raise DataError(f"{self.path}, line {row}: column {name!r} holds {cell[:40]!r}, not a number; "
                                "fix or remove the line")  # fmt: skip
            values.append(value)
        if len(values) < MIN_VALUES:
            raise DataError(f"{self.path}: column {name!r} has {len(values)} values; a series needs at least "
                            f"{MIN_VALUES}")  # fmt: skip
        values = torch.tensor(values, dtype=torch.float64)
        return standardised(f"{self.path.stem}:{name}", values, source=str(self.path))

    def _choose(self, column: str | None) -> str:
        numeric = self.numeric_columns()
        if column is None:
            if len(numeric) == 1:
                return numeric[0]
            listed = ", ".join(numeric) or "none"
            raise ConfigError(f"{self.path} has {len(numeric)} numeric columns ({listed}); choose one with "
                              "task.options.column")  # fmt: skip
        if column not in self.columns:
            raise ConfigError(f"{self.path} has no column {column!r}; its columns are {', '.join(self.columns)}")
        return column


@dataclass
class StandardisedSeries(SeriesData):
    """A series standardised with its training part's ``mean`` and ``std`` (both recorded in ``task.json``)."""

    mean: float = 0.0
    std: float = 1.0
    source: str = ""

    def info(self) -> dict[str, Any]:
        return {**super().info(), "mean": self.mean, "std": self.std, "source": self.source}


def standardised(name: str, values: torch.Tensor, *, source: str = "") -> StandardisedSeries:
    """``values`` minus the training part's mean, divided by its standard deviation (float32)."""
    n_train = int(len(values) * TRAIN_FRACTION)
    mean, std = float(values[:n_train].mean()), float(values[:n_train].std())
    std = std if std > 0 and math.isfinite(std) else 1.0  # a constant training part: only centre it
    time = torch.arange(1, len(values) + 1, dtype=torch.float32)
    return StandardisedSeries(name, time, ((values - mean) / std).float(), n_train, mean=mean, std=std, source=source)


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_csv_table(path: str | os.PathLike) -> CsvTable:
    """The columns of a CSV file (see the module docstring).

    Raises:
        DataError: missing, unreadable, not UTF-8, empty, rows of uneven width.
    """
    path = Path(path).expanduser()
    text = read_text(path, limit_bytes=MAX_BYTES, what="CSV file")  # regular files only: a pipe never blocks
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(text))
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path} holds no rows")
    return _table(path, rows)


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        return csv.excel  # one column, or nothing to tell from: commas


def _table(path: Path, rows: list[list[str]]) -> CsvTable:
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise DataError(f"{path}, row {number}: {len(row)} cells where the first row has {width}")
    has_header = not all(_number(c) is not None for c in rows[0])
    numbers = [str(i + 1) for i in range(width)]
    names = [c.strip() or numbers[i] for i, c in enumerate(rows[0])] if has_header else numbers
    if len(set(names)) != len(names):
        raise DataError(f"{path}: the header names a column twice ({', '.join(names)}); rename one")
    body = rows[1:] if has_header else rows
    return CsvTable(path, {name: [row[i].strip() for row in body] for i, name in enumerate(names)}, has_header)


@register_dataset(
    "csv-series",
    task="regression",
    description="one numeric column of a CSV file (data.data_dir; task.options.column), standardised; first 60% train",
)
def _csv_series(*, data_dir: str | os.PathLike | None = None, **_: object) -> CsvTable:
    if data_dir is None:
        raise ConfigError("the csv-series data set reads the CSV file named by data.data_dir; set it, and the column "
                          "with task.options.column")  # fmt: skip
    return read_csv_table(data_dir)
