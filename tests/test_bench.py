import pytest
import torch

from divekit.bench import format_table, run_bench
from divekit.cli import main
from divekit.cli.info import parse_size
from divekit.errors import ConfigError


def test_bench_counts_flops_exactly_and_reports_each_option():
    rows, peaks, work = run_bench("mlp", batch_size=32, options=("fp32", "bf16"), seconds=0.2)
    assert [r.option for r in rows] == ["fp32", "bf16"]  # channels-last does not apply to an MLP
    forward = 2 * (784 * 256 + 256 * 10)
    backward = 2 * 784 * 256 + 2 * 2 * 256 * 10  # no gradient for the input itself
    assert rows[0].infer_flops_per_example == forward
    assert rows[0].train_flops_per_example == forward + backward
    assert all(r.train_per_s > 0 and r.infer_per_s > 0 and 0 < r.fraction_of_peak < 5 for r in rows)
    assert peaks["fp32"] > 1e8
    table = format_table("mlp", rows, peaks, work, batch_size=32, device=torch.device("cpu"))
    assert "matmul peak measured now" in table and "% of peak" in table and "fastest training option" in table


def test_bench_cli_for_a_convolutional_model(capsys):
    assert main(["bench", "lenet", "--seconds", "0.1", "--options", "fp32,channels-last", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "channels-last" in out and "input 1x28x28" in out


@pytest.mark.parametrize("model, unit", [("gru-lm", "tokens"), ("transformer", "tokens")])
def test_bench_feeds_sequence_models(model, unit):
    rows, _, work = run_bench(model, batch_size=4, options=("fp32", "channels-last"), seconds=0.1)
    assert work.unit == unit and rows[0].train_per_s > 0 and rows[0].train_flops_per_example > 0
    assert [r.option for r in rows] == ["fp32"]  # channels-last is for convolutional models


def test_bad_bench_arguments(capsys):
    with pytest.raises(ConfigError, match="unknown bench option"):
        run_bench("mlp", options=("fp64",), seconds=0.1)
    assert main(["bench", "lenet", "--input-size", "big"]) == 2
    assert "--input-size must be positive integers" in capsys.readouterr().err
    assert parse_size("3,224,224") == parse_size("3x224x224") == (3, 224, 224)
