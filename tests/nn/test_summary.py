"""summary(): shapes equal a manual layer-by-layer pass; counts and multiply-adds are exact."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from divekit.cli import main
from divekit.models import create_model
from divekit.nn.summary import summary


def test_lenet_bn_rows_match_the_notes_layer_loop():
    net = create_model("lenet-bn")
    result = summary(net, (1, 28, 28))
    X, expected = torch.rand(1, 1, 28, 28), []
    net.eval()
    for layer in net:  # the notes' loop: print each layer's output shape
        X = layer(X)
        expected.append((type(layer).__name__, "x".join(map(str, X.shape))))
    assert [(r.kind, r.output_shape) for r in result.rows] == expected
    assert [r.params for r in result.rows] == [sum(p.numel() for p in layer.parameters()) for layer in net]
    assert result.rows[0].mult_adds == 6 * 24 * 24 * 25  # conv: outputs x kernel weights
    assert result.rows[9].mult_adds == 120 * 256  # linear: outputs x inputs
    assert result.total_params == 44_878 and result.mult_adds == sum(r.mult_adds for r in result.rows)


def test_nested_totals_of_torchvision_resnet18_on_meta():
    with torch.device("meta"):  # nothing allocated, nothing computed
        net = create_model("resnet18-imagenet")
    result = summary(net, (3, 224, 224), depth=2)
    assert result.total_params == 11_689_512
    assert result.mult_adds == 1_814_073_344  # torchvision's documented 1.81 GFLOPS (multiply-adds)
    layer1 = next(r for r in result.rows if r.name == "layer1")
    children = [r for r in result.rows if r.depth == 2 and result.rows.index(r) > result.rows.index(layer1)][:2]
    assert layer1.mult_adds == sum(c.mult_adds for c in children) and layer1.depth == 1
    buffers = sum(b.numel() * 4 for b in net.buffers() if b.dtype == torch.float32) + 8 * 20  # 20 int64 counters
    assert result.model_mb == pytest.approx((11_689_512 * 4 + buffers) / 1e6)
    text = str(result)
    assert "    0 (Residual)" in text and "  layer1 (Sequential)" in text and "conv1 (Conv2d)" in text
    assert "    conv1" not in text.split("layer1")[1].split("layer2")[0]  # depth 3 rows hidden at depth=2


def test_reused_modules_are_marked_and_counted_once():
    shared = nn.Linear(4, 4)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    result = summary(net, (4,))
    assert [r.repeated for r in result.rows] == [False, False, True]
    assert result.total_params == 20 and result.mult_adds == 2 * 16
    assert "(reused)" in str(result)


def test_any_module_with_explicit_inputs_and_recurrent_mult_adds():
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    result = summary(lstm, input_data=torch.randn(2, 5, 3))
    per_step = 4 * 4 * (3 + 4) + 4 * 4 * (4 + 4)  # gates x hidden x (input + hidden), per layer
    assert result.mult_adds == 5 * per_step
    assert result.output_shape == "(2x5x4, (2x2x4, 2x2x4))"


def test_training_mode_is_restored_and_batch_norm_accepts_one_example():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
    summary(net, (3,))
    assert net.training and int(net[1].num_batches_tracked) == 0


def test_exactly_one_input_is_required():
    with pytest.raises(ValueError, match="exactly one"):
        summary(nn.Linear(2, 2))


def test_cli_table_and_json(capsys):
    assert main(["summary", "lenet-bn"]) == 0
    out = capsys.readouterr().out
    assert "total params: 44,878" in out and "model size (MB): 0.18" in out
    assert main(["summary", "resnet18", "--input-size", "3,64,64", "--num-classes", "5", "--json", "--depth", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output_shape"] == "1x5" and data["rows"][0]["output_shape"] == "1x64x32x32"
    assert all(r["depth"] <= 1 for r in data["rows"])


@pytest.mark.parametrize(("args", "message"), [
    (["vgg11-narrow", "--input-size", "1,8,8"], "too small"),
    (["lenet-bn", "--input-size", "1,x"], "positive integers"),
    (["lenet-bn", "--option", "norm=batch"], "has no option 'norm'"),
    (["lenet-bn", "--option", "norm"], "--option expects KEY=VALUE"),
    (["nope"], "unknown model"),
])  # fmt: skip
def test_cli_errors_are_one_line(capsys, args, message):
    assert main(["summary", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_multiply_adds_are_per_example_for_any_batch():
    net = create_model("lenet-bn")
    one, eight = summary(net, (1, 28, 28)), summary(net, (1, 28, 28), batch_size=8)
    assert eight.mult_adds == one.mult_adds and [r.mult_adds for r in eight.rows] == [r.mult_adds for r in one.rows]
    assert eight.input_shape == "8x1x28x28" and eight.rows[0].output_shape == "8x6x24x24"
