"""Building blocks of the notes, each readable from scratch beside PyTorch's own."""

from divekit.nn.basics import MLP, MyLinear, MySequential
from divekit.nn.conv import (
    Conv2D,
    conv2d,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
    edge_image,
    learn_kernel,
)
from divekit.nn.init import apply_init, init_constant, init_normal, init_xavier
from divekit.nn.norm import BatchNorm, batch_norm
from divekit.nn.params import ParamRow, format_parameter_table, parameter_table
from divekit.nn.pooling import Pool2D, pool2d
from divekit.nn.recurrent import GRU, LSTM, RNN
from divekit.nn.summary import LayerRow, ModelSummary, summary

__all__ = [
    "BatchNorm",
    "Conv2D",
    "GRU",
    "LSTM",
    "LayerRow",
    "MLP",
    "ModelSummary",
    "MyLinear",
    "MySequential",
    "ParamRow",
    "Pool2D",
    "RNN",
    "apply_init",
    "batch_norm",
    "conv2d",
    "corr2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "edge_image",
    "format_parameter_table",
    "init_constant",
    "init_normal",
    "init_xavier",
    "learn_kernel",
    "parameter_table",
    "pool2d",
    "summary",
]
