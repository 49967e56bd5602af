"""Building blocks of the notes, each readable from scratch beside PyTorch's own."""

from divekit.nn.basics import MLP, MyLinear, MySequential
from divekit.nn.init import apply_init, init_constant, init_normal, init_xavier
from divekit.nn.params import ParamRow, format_parameter_table, parameter_table
from divekit.nn.recurrent import GRU, LSTM, RNN

__all__ = [
    "GRU",
    "LSTM",
    "MLP",
    "MyLinear",
    "MySequential",
    "ParamRow",
    "RNN",
    "apply_init",
    "format_parameter_table",
    "init_constant",
    "init_normal",
    "init_xavier",
    "parameter_table",
]
