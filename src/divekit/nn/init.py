"""Parameter initialisation (notes §1.2.2 参数初始化).

Each initialiser is a function of one module, so it can be applied to a whole
network with ``net.apply(init)`` or to one chosen layer with
``net[0].apply(init)``. They touch only linear and convolution layers
(``nn.Linear``, ``nn.Conv1d/2d/3d`` and their subclasses); other modules are
left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from divekit.choices import INITS
from divekit.errors import unknown_name

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.LazyLinear)


def _is_weighted(module: nn.Module) -> bool:
    return isinstance(module, _WEIGHTED) and getattr(module, "weight", None) is not None


def init_normal(module: nn.Module, *, std: float = 0.01) -> None:
    """Weights from N(0, std^2), biases zero (the notes' ``init_normal``)."""
    if _is_weighted(module):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def init_xavier(module: nn.Module) -> None:
    """Xavier (Glorot) uniform weights, U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).

    Biases keep their values, as in the book's training functions.
    """
    if _is_weighted(module):
        nn.init.xavier_uniform_(module.weight)


def init_constant(module: nn.Module, *, value: float = 1.0) -> None:
    """Every weight equal to ``value``, biases zero."""
    if _is_weighted(module):
        nn.init.constant_(module.weight, value)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


INITIALISERS: dict[str, Callable[[nn.Module], None]] = {
    "normal": init_normal,
    "xavier": init_xavier,
    "constant": init_constant,
}


def apply_init(net: nn.Module, name: str, **options: float) -> nn.Module:
    """Apply the initialiser called ``name`` to every layer of ``net``.

    ``name`` is ``"default"`` (keep PyTorch's initialisation), ``"normal"``,
    ``"xavier"`` or ``"constant"``; ``options`` go to the initialiser
    (``std`` for normal, ``value`` for constant). Returns ``net``.
    """
    if name == "default":
        return net
    if name not in INITIALISERS:
        raise unknown_name("initialiser", name, INITS)
    return net.apply(partial(INITIALISERS[name], **options))
