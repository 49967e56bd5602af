"""Fine-tuning (notes §5 微调): start from a network trained on other data.

The notes' recipe, for any classifier here and for torchvision's ResNet-18:

1. build the network and copy in the weights of a pretrained one, except
   its output layer;
2. replace the output layer by a new one for the new number of classes,
   and initialise only that layer (Xavier-uniform weights,
   ``nn.init.xavier_uniform_``); every other layer keeps its pretrained values;
3. train the new layer faster than the rest (``head_lr_mult``, 10 in the
   notes' method), or train only the new layer (``freeze_backbone``).

The pretrained weights come from a divekit run folder (its best checkpoint),
a ``state_dict`` file, or (``weights="torchvision"``) torchvision's own ImageNet
weights of ``resnet18-imagenet``, the ones ``resnet18(pretrained=True)`` loads
in the notes: read from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``, ``$TORCH_HOME``
defaulting to ``~/.cache/torch``), or downloaded into it on request
(``data.download``) and checked against the checksum torchvision publishes:
the first hex digits of the file's SHA-256, in its name. Files are always
loaded with ``weights_only=True``.

torchvision's weights expect ImageNet's input convention: three channels,
each normalised with ImageNet's mean and standard deviation. The network
keeps its three input channels and gets an input layer,
:class:`ImageNetInput`, that normalises, and that repeats a grayscale image
into three equal channels: a gray pixel is an RGB pixel with R = G = B, so
the pretrained first convolution sees exactly the kind of input it was
trained on, normalisation included. (Summing ``conv1`` over its input
channels instead would be equal only without the per-channel normalisation
and away from the zero-padded borders, and would save only the first
layer's extra input channels, about 4% of the network's multiply-adds at
224x224.) The input layer holds no trained values, so the ``state_dict``
keeps torchvision's keys exactly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from divekit import io
from divekit.errors import CheckpointError, ConfigError, DataError
from divekit.nn.norm import BatchNorm

NORM_LAYERS: tuple[type, ...] = (nn.modules.batchnorm._BatchNorm, BatchNorm)
TORCHVISION = "torchvision"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TorchvisionWeights:
    """One of torchvision's weight files: its name (which ends in the first hex digits of its SHA-256)."""

    file: str
    sha256_prefix: str

    @property
    def url(self) -> str:
        return f"https://download.pytorch.org/models/{self.file}"


# torchvision's ResNet18_Weights.IMAGENET1K_V1, for the model with torchvision's layout and parameter names.
TORCHVISION_WEIGHTS = {"resnet18-imagenet": TorchvisionWeights("resnet18-f37072fd.pth", "f37072fd")}


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
                       freeze: bool, load: bool = True, download: bool = False, mirror: str | None = None,
                       head_lr_mult: float = 1.0, log: Callable[[str], None] | None = None) -> nn.Module:  # fmt: skip
    """Load ``weights`` into ``model`` (built for the new data) with a fresh Xavier head.

    Args:
        model: the network, already built with ``num_classes`` outputs.
        weights: a run folder, a state_dict file (see :func:`read_pretrained`), or
            ``"torchvision"`` (torchvision's ImageNet weights; see the module docstring).
        expected_name: the model name being trained; a run folder must hold the same model.
        num_classes: outputs of the new head.
        freeze: train only the head (:func:`freeze_backbone`).
        load: read the weights (``False`` when a checkpoint will overwrite them anyway).
        download, mirror: with ``"torchvision"``: fetch the file if the hub cache lacks it.
        head_lr_mult: the head's learning-rate multiplier, for the report.
        log: where to report what was done (loaded, replaced, frozen), one line.
    """
    if weights == TORCHVISION:
        check_torchvision(expected_name)
        use_imagenet_input(model)
    report = None
    if load:
        path = torchvision_file(expected_name, download=download, mirror=mirror) if weights == TORCHVISION else weights
        state, name = read_pretrained(path)
        if name is not None and name != expected_name:
            raise ConfigError(f"{weights} holds a {name!r} model, not {expected_name!r}; fine-tune a {name!r} "
                              "from it, or name weights of the same model (model.weights)")
        skipped = load_backbone(model, state, source=str(path))
        head = output_layer_name(model)
        old = state.get(f"{head}.weight")
        new = replace_head(model, num_classes).weight
        report = (f"fine-tuning from {path}: loaded {len(state) - len(skipped)} of its {len(state)} tensors; replaced "
                  f"the output layer {head}: {describe_weight(old)} by a new {head}: {describe_weight(new)} "
                  f"(Xavier-uniform), trained at {head_lr_mult:g}x the learning rate")  # fmt: skip
    if freeze:
        freeze_backbone(model)
    if report is not None and log is not None:
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        report += f"; frozen: {'everything else' if freeze else 'nothing'} ({frozen:,} parameters)"
        if weights == TORCHVISION:
            report += "; input: ImageNet mean/std normalisation, a grayscale image repeated to 3 channels"
        log(report)
    return model


def describe_weight(weight: torch.Tensor | None) -> str:
    """A linear or convolution layer's inputs and outputs from its weight ``(out, in, ...)``: ``512 -> 2``."""
    return "?" if weight is None or weight.dim() < 2 else f"{weight.shape[1]} -> {weight.shape[0]}"


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


# ------------------------------------------------------------------ torchvision's ImageNet weights
class ImageNetInput(nn.Module):
    """ImageNet's input convention: a grayscale image repeated to RGB, each channel normalised.

    Maps images in [0, 1], ``(N, 1, H, W)`` or ``(N, 3, H, W)``, to
    ``(X - mean) / std`` with ImageNet's per-channel ``mean`` and ``std``
    (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`), ``(N, 3, H, W)``. Its
    buffers are not saved in the ``state_dict``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.shape[1] == 1:
            X = X.expand(-1, 3, -1, -1)  # (N, 3, H, W): a gray pixel is R = G = B
        return (X - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={IMAGENET_MEAN}, std={IMAGENET_STD}, grayscale repeated to 3 channels"


def _imagenet_input_hook(model: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (model.input_transform(args[0]), *args[1:])


def use_imagenet_input(model: nn.Module) -> nn.Module:
    """Give ``model`` an :class:`ImageNetInput` (as ``model.input_transform``) applied before its own forward.

    A forward pre-hook applies it, so the network's parameter names stay
    torchvision's and every caller (training, ``evaluate``, ``predict``,
    export) feeds images in [0, 1] as to any other divekit model.
    """
    if not isinstance(getattr(model, "input_transform", None), ImageNetInput):
        parameter = next(model.parameters(), None)
        layer = ImageNetInput()
        model.input_transform = layer.to(parameter.device) if parameter is not None else layer
        model.register_forward_pre_hook(_imagenet_input_hook)
    return model


def check_torchvision(model_name: str) -> TorchvisionWeights:
    """The torchvision weights of ``model_name``; ConfigError for a model torchvision has none of here."""
    if model_name not in TORCHVISION_WEIGHTS:
        raise ConfigError(f"model.weights=torchvision loads torchvision's ImageNet weights, which divekit maps for "
                          f"{', '.join(TORCHVISION_WEIGHTS)} only, not {model_name!r}; train one of those, or name "
                          "a run folder or state_dict file (model.weights)")  # fmt: skip
    return TORCHVISION_WEIGHTS[model_name]


def hub_checkpoints() -> Path:
    """torch hub's folder of weight files: ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def builder_options(weights: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """The builder's options for fine-tuning from ``weights``: torchvision's keep ImageNet's 3 input channels."""
    return {**options, "in_channels": 3} if weights == TORCHVISION else options


def torchvision_file(model_name: str, *, download: bool = False, mirror: str | None = None) -> Path:
    """torchvision's weight file of ``model_name`` in the hub cache, downloaded first if allowed and missing."""
    spec = check_torchvision(model_name)
    path = hub_checkpoints() / spec.file
    if path.is_file():
        return path
    if not download:
        raise DataError(f"torchvision's ImageNet weights for {model_name} are not in the torch hub cache ({path}); "
                        f"set data.download=true to fetch them from download.pytorch.org (checked against the "
                        f"published SHA-256 prefix {spec.sha256_prefix}), or copy {spec.file} there")  # fmt: skip
    return fetch_weights(spec, path.parent, mirror=mirror)


def fetch_weights(spec: TorchvisionWeights, folder: Path, *, mirror: str | None = None, timeout: float = 60.0,
                  progress: bool = True) -> Path:  # fmt: skip
    """Download ``spec`` into ``folder`` with torch hub's checked download (its SHA-256 must start as published).

    ``mirror`` (or ``$DIVEKIT_MIRROR``) replaces ``download.pytorch.org`` by a
    base URL, e.g. a local copy. A failed or mismatched download leaves nothing behind.
    """
    from divekit.data.download import MIRROR_ENV

    base = mirror or os.environ.get(MIRROR_ENV)
    url = base.rstrip("/") + "/" + spec.file if base else spec.url
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with socket_timeout(timeout):
            torch.hub.download_url_to_file(url, str(folder / spec.file), hash_prefix=spec.sha256_prefix,
                                           progress=progress)  # fmt: skip
    except RuntimeError as err:  # torch hub's checksum mismatch; it has deleted the download
        raise DataError(f"checksum mismatch for {spec.file} from {url} ({err}); the download was deleted") from err
    except (urllib.error.URLError, OSError) as err:
        raise DataError(f"could not download {spec.file} from {url}: {getattr(err, 'reason', err)}") from err
    return folder / spec.file


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Give sockets opened inside the block a timeout (torch hub's download sets none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
