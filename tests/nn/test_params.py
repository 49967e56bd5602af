from torch import nn

from divekit.nn import format_parameter_table, parameter_table


def test_table_lists_every_parameter():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    net[2].bias.requires_grad_(False)
    rows = parameter_table(net)
    assert [r.name for r in rows] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [r.shape for r in rows] == [(8, 4), (8,), (1, 8), (1,)]
    assert [r.count for r in rows] == [32, 8, 8, 1]
    assert [r.requires_grad for r in rows] == [True, True, True, False]


def test_shared_parameters_are_counted_once():
    shared = nn.Linear(8, 8)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    assert sum(r.count for r in parameter_table(net)) == 72


def test_formatted_table_has_totals():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    net[0].weight.requires_grad_(False)
    text = format_parameter_table(net)
    assert "0.weight" in text and "8x4" in text
    assert text.splitlines()[-1] == "total 49 parameters, 17 trainable"
