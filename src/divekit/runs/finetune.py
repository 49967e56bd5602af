"""Fine-tuning (notes §5 微调): start from a network trained on other data.

The notes' recipe, for any classifier here and for torchvision's ResNet-18:

1. build the network and copy in the weights of a pretrained one, except
   its output layer;
2. replace the output layer by a new one for the new number of classes,
   and initialise only that layer (Xavier-uniform weights,
   ``nn.init.xavier_uniform_``); every other layer keeps its pretrained values;
3. train the new layer faster than the rest (``head_lr_mult``, 10 in the
   notes' method), or train only the new layer (``freeze_backbone``).

The pretrained weights come from a divekit run folder (its best checkpoint)
or a ``state_dict`` file, e.g. one saved from
``torchvision.models.resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)``:
files are always loaded locally and with ``weights_only=True``; nothing is
downloaded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from divekit import io
from divekit.errors import CheckpointError, ConfigError
from divekit.nn.norm import BatchNorm

NORM_LAYERS: tuple[type, ...] = (nn.modules.batchnorm._BatchNorm, BatchNorm)


def output_layer_name(model: nn.Module) -> str:
    """Dotted name of the output layer: the last ``nn.Linear`` or ``nn.Conv2d`` registered.

    Every classifier in this library (and torchvision's ResNets) registers
    its layers in the order they run, so the last one is the head.
    """
    names = [name for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))]
    if not names:
        raise ConfigError(f"{type(model).__name__} has no linear or convolutional output layer to replace")
    return names[-1]


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the output layer for a new one with ``num_classes`` outputs, Xavier-initialised.

    The new layer keeps the old one's inputs (and kernel, for a convolution);
    only its weight is re-drawn with ``xavier_uniform_`` (the bias keeps
    PyTorch's default), as the notes do. Returns the new layer.
    """
    name = output_layer_name(model)
    old = model.get_submodule(name)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, stride=old.stride, padding=old.padding,
                        bias=old.bias is not None)  # fmt: skip
    nn.init.xavier_uniform_(new.weight)
    model.set_submodule(name, new.to(old.weight.device, old.weight.dtype))
    return new


def read_pretrained(source: str | Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The weights in ``source`` and, for a run folder, the name of its model.

    Args:
        source: a divekit run folder (its ``best`` checkpoint, else ``last``),
            a divekit checkpoint file, a plain ``state_dict`` file, or a
            safetensors file (told from its content, whatever its name).

    Raises:
        CheckpointError: one line naming the real problem (see :func:`divekit.io.load`),
            or what the file holds instead of weights.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        from divekit.runs.folder import read_run_config

        name = read_run_config(path).model.name
        files = [path / "checkpoints" / f"{which}.pt" for which in ("best", "last")]
        file = next((f for f in files if f.is_file()), None)
        if file is None:
            raise CheckpointError(f"{path} has no checkpoint (checkpoints/best.pt); train it first")
        return _state_dict(io.load(file), file), name
    if not path.exists():
        raise CheckpointError(f"model.weights {source}: no such run folder or file")
    return _state_dict(io.load(path), path), None


def _state_dict(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict) and loaded.get("format") == "divekit-checkpoint":
        loaded = loaded.get("model")
    elif isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # the common {"state_dict": ...} wrapper
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(k, str) and torch.is_tensor(v)
                                                             for k, v in loaded.items()):  # fmt: skip
        raise CheckpointError(f"{path} holds no state_dict (a mapping of parameter names to tensors): it holds "
                              f"{_describe(loaded)}")  # fmt: skip
    return loaded


def _describe(value: Any) -> str:
    """A few words on what a loaded file holds, for the error message."""
    if not isinstance(value, dict):
        return f"a {type(value).__name__}" if value is not None else "nothing usable"
    if not value:
        return "an empty mapping"
    odd = [(k, v) for k, v in value.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    shown = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in odd[:3])
    return f"a mapping with {len(odd)} entr{'y' if len(odd) == 1 else 'ies'} that are not named tensors: {shown}"


def load_backbone(model: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str) -> list[str]:
    """Copy every entry of ``state_dict`` into ``model`` except the output layer's.

    Everything else must match exactly (names and shapes); returns the
    skipped keys of the pretrained head.

    Raises:
        CheckpointError: keys missing, unexpected or of another shape, named.
    """
    from divekit.engine.checkpoint import load_model_state

    prefix = output_layer_name(model) + "."
    own = model.state_dict()
    head = {k: v for k, v in own.items() if k.startswith(prefix)}
    backbone = {k: v for k, v in state_dict.items() if not k.startswith(prefix)}
    load_model_state(model, {**backbone, **head}, source=source)
    return sorted(k for k in state_dict if k.startswith(prefix))


def _keep_eval(module: nn.Module, args: tuple[Any, ...]) -> None:
    module.eval()  # a frozen layer's running statistics stay the pretrained ones


def freeze_backbone(model: nn.Module) -> list[nn.Parameter]:
    """Stop training everything but the output layer; return the head's parameters.

    Backbone parameters stop requiring gradients, and its batch-norm layers
    stay in evaluation mode (a forward pre-hook), so they keep normalising
    with the pretrained statistics instead of drifting with the new data.
    """
    head = model.get_submodule(output_layer_name(model))
    head_params = {id(p) for p in head.parameters()}
    for param in model.parameters():
        param.requires_grad_(id(param) in head_params)
    for module in model.modules():
        if isinstance(module, NORM_LAYERS) and module is not head:
            module.register_forward_pre_hook(_keep_eval)
    return list(head.parameters())


def param_groups(model: nn.Module, *, lr: float, head_lr_mult: float = 1.0) -> list[dict[str, Any]]:
    """Optimiser groups: the backbone at ``lr``, the output layer at ``lr * head_lr_mult``.

    Parameters that do not require gradients (a frozen backbone) are left out.
    """
    head = model.get_submodule(output_layer_name(model))
    head_ids = {id(p) for p in head.parameters()}
    backbone = [p for p in model.parameters() if id(p) not in head_ids and p.requires_grad]
    groups = [{"params": backbone, "lr": lr, "name": "backbone"}] if backbone else []
    groups.append({"params": list(head.parameters()), "lr": lr * head_lr_mult, "name": "head"})
    return groups


def prepare_finetuning(model: nn.Module, *, weights: str, expected_name: str, num_classes: int,
                       freeze: bool, load: bool = True) -> nn.Module:  # fmt: skip
    """Load ``weights`` into ``model`` (built for the new data) with a fresh Xavier head.

    Args:
        model: the network, already built with ``num_classes`` outputs.
        weights: a run folder or a state_dict file (see :func:`read_pretrained`).
        expected_name: the model name being trained; a run folder must hold the same model.
        num_classes: outputs of the new head.
        freeze: train only the head (:func:`freeze_backbone`).
        load: read the weights (``False`` when a checkpoint will overwrite them anyway).
    """
    if load:
        state, name = read_pretrained(weights)
        if name is not None and name != expected_name:
            raise ConfigError(f"{weights} holds a {name!r} model, not {expected_name!r}; fine-tune a {name!r} "
                              "from it, or name weights of the same model (model.weights)")
        load_backbone(model, state, source=str(weights))
        replace_head(model, num_classes)
    if freeze:
        freeze_backbone(model)
    return model


def from_pretrained(name: str, weights: str | Path, *, num_classes: int, freeze: bool = False,
                    **options: Any) -> nn.Module:  # fmt: skip
    """Registered model ``name`` with ``num_classes`` outputs, filled from ``weights`` (new Xavier head).

    Example: ``from_pretrained("resnet18-imagenet", "resnet18.pth", num_classes=2)`` with a
    file saved by ``torch.save(torchvision.models.resnet18(weights=...).state_dict(), "resnet18.pth")``.

    Args:
        name: a registered model name.
        weights: a divekit run folder or a state_dict file.
        num_classes: outputs of the new head.
        freeze: train only the head.
        options: other builder options (``in_channels``...).
    """
    from divekit.models import create_model

    model = create_model(name, num_classes=num_classes, **options)
    return prepare_finetuning(model, weights=str(weights), expected_name=name, num_classes=num_classes, freeze=freeze)
