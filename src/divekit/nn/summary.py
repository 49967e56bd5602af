"""A layer-by-layer summary of any network (notes §2.3: push a tensor through and print each shape).

The notes print every layer's output shape by running a random tensor
through ``net`` one layer at a time. :func:`summary` does the same for any
``nn.Module``, nested blocks included, with forward hooks: one row per module
call, in call order, indented by nesting depth, with

- the output shape;
- the parameters of the module (with its children for a block);
- the multiply-adds per example (convolutions, linear layers and recurrent
  layers, which hold nearly all the arithmetic; other layers count 0),

then the totals and the model's size in MB (parameters and buffers). A model
built on PyTorch's ``meta`` device is summarised without computing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from divekit.nn.conv import Conv2D

MB = 1e6  # sizes are reported in megabytes (10^6 bytes)


@dataclass
class LayerRow:
    """One call of one module during the summary's forward pass."""

    name: str
    kind: str
    depth: int
    output_shape: str
    params: int
    mult_adds: int = 0  # per example
    repeated: bool = False  # the module already ran earlier in this forward pass


@dataclass
class ModelSummary:
    """What :func:`summary` found; ``str()`` gives the table."""

    model_name: str
    rows: list[LayerRow]
    input_shape: str
    output_shape: str
    total_params: int
    trainable_params: int
    mult_adds: int
    input_bytes: int
    param_bytes: int
    buffer_bytes: int
    depth: int = 3
    batch_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_mb(self) -> float:
        """Parameters plus buffers, in MB: what ``torch.save(state_dict)`` roughly writes."""
        return (self.param_bytes + self.buffer_bytes) / MB

    def to_dict(self) -> dict[str, Any]:
        rows = [vars(r) for r in self.rows if r.depth <= self.depth]
        return {"model": self.model_name, "input_shape": self.input_shape, "output_shape": self.output_shape,
                "total_params": self.total_params, "trainable_params": self.trainable_params,
                "mult_adds_per_example": self.mult_adds, "model_mb": self.model_mb, "rows": rows}  # fmt: skip

    def __str__(self) -> str:
        return format_summary(self)


def _shape_of(value: Any) -> str:
    if torch.is_tensor(value):
        return "x".join(map(str, value.shape)) or "scalar"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shape_of(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shape_of(v)}" for k, v in value.items()) + "}"
    return "-"


def _first_tensor(value: Any) -> torch.Tensor | None:
    if torch.is_tensor(value):
        return value
    if isinstance(value, (tuple, list)) and value:
        return _first_tensor(value[0])
    return None


RNN_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def mult_adds(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int:
    """Multiply-adds of one call of a leaf ``module`` (whole batch).

    Convolution: one per kernel weight per output value; linear: one per
    weight per output row; recurrent: each gate's input and hidden matrix
    products at every time step. Other layers count 0.
    """
    out = _first_tensor(output)
    if out is None:
        return 0
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, Conv2D)):
        return out.numel() * module.weight[0].numel()  # weight[0]: (in / groups, *kernel)
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.RNNBase):
        return _rnn_mult_adds(module, out)
    return 0


def _rnn_mult_adds(module: nn.RNNBase, out: torch.Tensor) -> int:
    steps = out.shape[:-1].numel()  # batch x time
    gates, hidden = RNN_GATES.get(module.mode, 1), module.hidden_size
    directions = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        width = module.input_size if layer == 0 else hidden * directions
        total += directions * gates * hidden * (width + hidden)
    return steps * total


class _Recorder:
    """Forward hooks that turn one forward pass into :class:`LayerRow` s."""

    def __init__(self, model: nn.Module) -> None:
        self.names = {module: name for name, module in model.named_modules()}
        self.rows: list[LayerRow] = []
        self.stack: list[LayerRow] = []
        self.seen: set[int] = set()
        self.handles = []
        for module in self.names:
            self.handles.append(module.register_forward_pre_hook(self.before))
            self.handles.append(module.register_forward_hook(self.after))

    def before(self, module: nn.Module, inputs: tuple[Any, ...]) -> None:
        name = self.names.get(module, "?")
        params = sum(p.numel() for p in module.parameters())
        row = LayerRow(name=name.rsplit(".", 1)[-1] if name else "", kind=type(module).__name__,
                       depth=len(self.stack), output_shape="-", params=params, repeated=id(module) in self.seen)  # fmt: skip
        self.seen.add(id(module))
        self.rows.append(row)
        self.stack.append(row)

    def after(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        row = self.stack.pop()
        row.output_shape = _shape_of(output)
        if not any(True for _ in module.children()):
            work = mult_adds(module, inputs, output)
            row.mult_adds += work
            for parent in self.stack:
                parent.mult_adds += work

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _make_input(model: nn.Module, input_size: Sequence[int], batch_size: int, dtype: torch.dtype) -> torch.Tensor:
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    if dtype.is_floating_point:
        return torch.randn(batch_size, *input_size, device=device, dtype=dtype)
    return torch.zeros(batch_size, *input_size, device=device, dtype=dtype)


def summary(
    model: nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    input_data: Any = None,
    batch_size: int = 1,
    depth: int = 3,
    dtype: torch.dtype = torch.float32,
) -> ModelSummary:
    """Run one forward pass through ``model`` and tabulate every module call.

    The model runs in eval mode under ``no_grad`` (restored afterwards), so
    batch norm accepts a batch of one and nothing is learned.

    Args:
        model: any ``nn.Module`` (on any device, ``meta`` included).
        input_size: the shape of one example, e.g. ``(1, 28, 28)``; a random
            batch of ``batch_size`` is made on the model's device.
        input_data: the input itself instead (a tensor, or a tuple of
            positional arguments), e.g. token ids for a language model.
        batch_size: examples in the generated batch; multiply-adds are
            reported per example.
        depth: deepest nesting level shown in the table (totals count all).
        dtype: of the generated input (``torch.long`` for token ids).
    """
    if (input_size is None) == (input_data is None):
        raise ValueError("give exactly one of input_size or input_data")
    if input_data is None:
        input_data = _make_input(model, input_size, batch_size, dtype)
    args = input_data if isinstance(input_data, tuple) else (input_data,)
    first = _first_tensor(args)
    examples = first.shape[0] if first is not None and first.dim() else 1
    recorder, was_training = _Recorder(model), model.training
    try:
        model.eval()
        with torch.no_grad():
            output = model(*args)
    finally:
        recorder.remove()
        model.train(was_training)
    for row in recorder.rows:  # per example, like the total
        row.mult_adds //= max(examples, 1)
    params = list(model.parameters())
    return ModelSummary(
        model_name=type(model).__name__, rows=recorder.rows[1:], input_shape=_shape_of(input_data),
        output_shape=_shape_of(output), total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        mult_adds=recorder.rows[0].mult_adds if recorder.rows else 0,
        input_bytes=sum(a.numel() * a.element_size() for a in args if torch.is_tensor(a)),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        depth=depth, batch_size=examples,
    )  # fmt: skip


def _human(count: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count:.0f}"


def format_summary(s: ModelSummary) -> str:
    """The summary as an aligned table with totals underneath."""
    header = ("layer (type)", "output shape", "params", "mult-adds")
    cells = [(f"{'  ' * r.depth}{r.name} ({r.kind})", r.output_shape,
              "(reused)" if r.repeated else f"{r.params:,}", f"{r.mult_adds:,}")
             for r in s.rows if r.depth <= s.depth]  # fmt: skip
    cells.insert(0, (s.model_name, s.output_shape, f"{s.total_params:,}", f"{s.mult_adds:,}"))
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))

    def align(row: tuple[str, ...]) -> str:  # text columns to the left, numbers to the right
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    lines = [align(header), rule, *map(align, cells), rule]
    lines += [
        f"input: {s.input_shape}  ->  output: {s.output_shape}",
        f"total params: {s.total_params:,} ({s.trainable_params:,} trainable, "
        f"{s.total_params - s.trainable_params:,} frozen)",
        f"mult-adds per example: {_human(s.mult_adds)} ({s.mult_adds:,})",
        f"input size (MB): {s.input_bytes / MB:.2f}",
        f"params size (MB): {s.param_bytes / MB:.2f}  buffers (MB): {s.buffer_bytes / MB:.2f}  "
        f"model size (MB): {s.model_mb:.2f}",
    ]
    return "\n".join(lines)

