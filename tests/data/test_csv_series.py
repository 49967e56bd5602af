"""csv-series: a column of a CSV file chosen by name, standardised with training statistics only."""

from __future__ import annotations

import pytest
import torch

from divekit.data import load_dataset
from divekit.data.csv_series import read_csv_table
from divekit.errors import ConfigError, DataError
from divekit.runs import resolve_config
from divekit.runs.build import build_source


def write_csv(path, rows, header="day,price,city", sep=","):
    lines = ([header] if header else []) + [sep.join(str(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rows(n=50):
    return [(t, 100 + 3 * t, "paris") for t in range(n)]


def test_a_column_by_name_standardised_with_the_training_part_only(tmp_path):
    table = load_dataset("csv-series", data_dir=write_csv(tmp_path / "s.csv", rows()))
    assert table.numeric_columns() == ["day", "price"]
    series = table.series("price")
    raw = torch.tensor([100.0 + 3 * t for t in range(50)], dtype=torch.float64)
    train = raw[:30]  # the first 60% train, as the book's 600 of 1,000
    assert series.n_train == 30 and series.name == "s:price"
    torch.testing.assert_close(series.values, ((raw - train.mean()) / train.std()).float())
    assert series.info()["mean"] == pytest.approx(float(train.mean()))
    assert float(series.values[:30].mean()) == pytest.approx(0, abs=1e-6)  # test values played no part


def test_the_column_must_be_named_when_several_are_numeric(tmp_path):
    path = write_csv(tmp_path / "s.csv", rows())
    with pytest.raises(ConfigError, match=r"2 numeric columns \(day, price\); choose one with task.options.column"):
        build_source(resolve_config("ar-mlp", data="csv-series", overrides={"data.data_dir": str(path)}))
    with pytest.raises(ConfigError, match="no column 'prices'; its columns are day, price, city"):
        load_dataset("csv-series", data_dir=path).series("prices")
    with pytest.raises(DataError, match=r"line 2: column 'city' holds 'paris', not a number"):
        load_dataset("csv-series", data_dir=path).series("city")
    single = write_csv(tmp_path / "one.csv", [(v,) for v in range(20)], header="value")
    source = build_source(resolve_config("ar-mlp", data="csv-series", overrides={"data.data_dir": str(single)}))
    assert source.info()["data"] == "one:value"


def test_semicolons_tabs_and_no_header(tmp_path):
    semi = read_csv_table(write_csv(tmp_path / "a.csv", rows(), sep=";", header="day;price;city"))
    assert list(semi.columns) == ["day", "price", "city"]
    bare = read_csv_table(write_csv(tmp_path / "b.csv", [(1, 2.5), (2, 3.5)], header=None))
    assert not bare.has_header and bare.columns == {"1": ["1", "2"], "2": ["2.5", "3.5"]}


@pytest.mark.parametrize(("content", "message"), [
    (b"", "holds no rows"),
    (b"a,b\n1,2\n3\n", "row 3: 1 cells where the first row has 2"),
    (b"a,a\n1,2\n", "names a column twice"),
    (b"x\n\xff\xfe\n", "not UTF-8"),
])  # fmt: skip
def test_malformed_files_are_one_error(tmp_path, content, message):
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_csv_table(tmp_path / "bad.csv")


def test_too_short_a_series_and_the_sine_refuses_a_column(tmp_path):
    short = write_csv(tmp_path / "short.csv", [(v,) for v in range(5)], header="v")
    with pytest.raises(DataError, match="has 5 values; a series needs at least 10"):
        load_dataset("csv-series", data_dir=short).series(None)
    with pytest.raises(ConfigError, match="task.options.column chooses a column of a csv-series file"):
        build_source(resolve_config("ar-mlp", overrides={"task.options.column": "v"}))
