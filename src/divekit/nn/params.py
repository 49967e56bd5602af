"""Parameter access (notes §1.2.1 参数访问): a table of every parameter; the module inside wrappers."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParamRow:
    """One parameter of a module: its dotted name, shape, size and trainability."""

    name: str
    shape: tuple[int, ...]
    count: int
    requires_grad: bool


def parameter_table(module: nn.Module) -> list[ParamRow]:
    """List every parameter of ``module`` in ``named_parameters`` order.

    Shared parameters appear once, under their first name, as in
    ``named_parameters``.
    """
    return [
        ParamRow(name, tuple(param.shape), param.numel(), param.requires_grad)
        for name, param in module.named_parameters()
    ]


def format_parameter_table(module: nn.Module) -> str:
    """The parameter table as aligned text, with total and trainable counts."""
    rows = parameter_table(module)
    header = ("name", "shape", "count", "requires_grad")
    cells = [(r.name, "x".join(map(str, r.shape)) or "scalar", f"{r.count:,}", str(r.requires_grad)) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    total = sum(r.count for r in rows)
    trainable = sum(r.count for r in rows if r.requires_grad)
    lines.append(f"total {total:,} parameters, {trainable:,} trainable")
    return "\n".join(lines)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside ``DistributedDataParallel`` and ``torch.compile`` wrappers."""
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile
