"""From a run config to the objects training needs: the data source, the model, the objective.

:func:`resolve_config` layers the defaults; :func:`build_source`,
:func:`build_model` and :func:`build_objective` make the pieces; and
:func:`check_model_fits` runs the model once on one batch, so a model whose
output does not fit the task, or that cannot read the data, is reported in
one line before any folder is made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import divekit.data  # noqa: F401  (registers the data sets)
import divekit.models  # noqa: F401  (registers the models)
from divekit.data.batching import take_rows
from divekit.data.image_folder import is_image_folder
from divekit.data.pairs import looks_like_pairs
from divekit.data.registry import get_dataset_entry, load_dataset
from divekit.data.sources.base import DataSource
from divekit.errors import ConfigError, DivekitError
from divekit.io import read_json_object
from divekit.models.registry import call_builder, get_model_entry, supported_options
from divekit.nn.init import apply_init
from divekit.notes import note
from divekit.runs import finetune
from divekit.runs.config import RunConfig, set_dotted
from divekit.runs.model_files import load_model_file, recorded_builder
from divekit.tasks.base import Objective, get_task

# The embedded data set each task trains on when nothing else is named.
DEFAULT_DATA = {"classification": "digits", "language-model": "pydoc", "seq2seq": "numbers-fr", "regression": "sine"}


def is_file_spec(model: str) -> bool:
    """Whether ``model`` names an object in a Python file (``path/to/file.py:NAME``)."""
    return ".py:" in model


def resolve_config(
    model: str,
    *,
    data: str | None = None,
    task: str | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | Path | None = None,
) -> RunConfig:
    """Build a run config: defaults < model recipe < data recipe < the model's recipe for it < file < ``overrides``.

    Args:
        model: a registered model name, or ``path/to/file.py:NAME`` (an ``nn.Module`` class or a
            function returning one; the file is imported now, and recorded with its SHA-256).
        data: a registered data-set name (default: the model's recipe's, else its task's embedded one).
        task: the task (default: the data set's).
        overrides: dotted keys (``"optim.lr"``) and their values.
        config_file: a JSON file of config sections.
    """
    layered: dict[str, Any] = RunConfig().to_dict()
    overrides = dict(overrides or {})
    file_cfg = read_config_file(config_file) if config_file else {}
    model_task = _layer_model(layered, model)
    task = task or overrides.get("task.name") or file_cfg.get("task", {}).get("name") or model_task
    default_data = layered["data"]["name"] if model_task else DEFAULT_DATA.get(task or "", layered["data"]["name"])
    data_name = data or overrides.get("data.name") or file_cfg.get("data", {}).get("name")
    data_dir = overrides.get("data.data_dir", file_cfg.get("data", {}).get("data_dir"))
    if data_name is None and data_dir is not None and get_dataset_entry(default_data).embedded:
        data_name, reason = infer_data(data_dir)
        note(f"{data_dir} is {reason}: training on it as the data set {data_name!r}")
    data_name = data_name or default_data
    data_entry = get_dataset_entry(data_name)
    if data_entry.embedded and data_dir is not None:
        raise ConfigError(f"data set {data_name!r} is embedded and reads no files, so data.data_dir={data_dir} would "
                          "be ignored; drop it, or name the data set that reads it (data.name)")  # fmt: skip
    for key, value in data_entry.recipe.items():
        set_dotted(layered, key, value)
    for key, value in (get_model_entry(model).data_recipes.get(data_name, {}) if model_task else {}).items():
        set_dotted(layered, key, value)  # how this model learns on this data set
    _merge(layered, file_cfg)
    layered["data"]["name"] = data_name
    for key, value in overrides.items():
        set_dotted(layered, key, value)
    layered["task"]["name"] = task or data_entry.task
    config = RunConfig.from_dict(layered).validate()
    check_task_fits(config)
    if config.model.weights == finetune.TORCHVISION:
        finetune.check_torchvision(config.model.name)
    return config


def _layer_model(layered: dict[str, Any], model: str) -> str | None:
    """Put the model (and a registered model's recipe) into ``layered``; return its task if known."""
    if is_file_spec(model):
        loaded = load_model_file(model)
        layered["model"].update(name=loaded.name, source="file", file=str(loaded.path), file_sha256=loaded.sha256)
        return None
    entry = get_model_entry(model)
    layered["model"]["name"] = model
    for key, value in entry.recipe.items():
        set_dotted(layered, key, value)
    return entry.task


def infer_data(data_dir: str | Path) -> tuple[str, str]:
    """The data set that ``data_dir`` holds, and the reason, told from what is there.

    A folder of class subfolders of images (or with a ``train/`` folder) is
    ``image-folder``; a ``.csv`` file ``csv-series``; a file whose lines are
    ``source<TAB>target`` ``pairs``; any other UTF-8 text ``text-file``.

    Raises:
        ConfigError: the path is missing, or holds none of these.
    """
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise ConfigError(f"data.data_dir {path} does not exist")
    if path.is_dir():
        if is_image_folder(path):
            return "image-folder", "a folder of images in class subfolders"
        raise ConfigError(f"cannot tell which data set {path} holds: it is a folder without class subfolders of "
                          "images; name the data set with data.name (`divekit data list`), e.g. fashion-mnist for "
                          "its IDX files")  # fmt: skip
    if not path.is_file():
        raise ConfigError(f"data.data_dir {path} is not a regular file or a folder (a device or a pipe?); "
                          "name a file or a folder of data")  # fmt: skip
    if path.suffix.lower() == ".csv":
        return "csv-series", "a CSV file"
    if looks_like_pairs(path):
        return "pairs", "a file of tab-separated sentence pairs"
    if is_utf8_text(path):
        return "text-file", "a UTF-8 text file"
    raise ConfigError(f"cannot tell which data set {path} holds (not a folder of class subfolders of images, a CSV "
                      "file, sentence pairs or UTF-8 text); name it with data.name (`divekit data list`)")  # fmt: skip


def is_utf8_text(path: Path, *, sample: int = 1 << 16) -> bool:
    """Whether the start of ``path`` is UTF-8 text without NUL bytes (a cut multi-byte character allowed)."""
    import codecs

    try:
        with open(path, "rb") as handle:
            head = handle.read(sample)
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except (OSError, UnicodeDecodeError):
        return False
    return bool(head.strip()) and b"\0" not in head


def check_task_fits(config: RunConfig) -> None:
    """A registered model must serve the run's task, and the data set must feed it."""
    data_task = get_dataset_entry(config.data.name).task
    if config.task.name != data_task:
        raise ConfigError(f"data set {config.data.name!r} is for the {data_task} task, not {config.task.name}; "
                          f"choose a {config.task.name} data set (`divekit data list`)")  # fmt: skip
    if config.model.source == "registry":
        model_task = get_model_entry(config.model.name).task
        if model_task != config.task.name:
            raise ConfigError(f"model {config.model.name!r} is for the {model_task} task, but data set "
                              f"{config.data.name!r} is for {config.task.name}")  # fmt: skip


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON file of config sections (``--config``), in today's layout."""
    from divekit.runs.config import migrate

    return migrate(read_json_object(path, what="config file", error=ConfigError))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "options":
            _merge(base[key], value)
        else:
            base[key] = value


def build_source(config: RunConfig, data: Any | None = None) -> DataSource:
    """The data source of the run's data set for its task."""
    data = data if data is not None else load_dataset(
        config.data.name, data_dir=config.data.data_dir, download=config.data.download, mirror=config.data.mirror)
    entry = get_task(config.task.name or get_dataset_entry(config.data.name).task)
    model_size = get_model_entry(config.model.name).input_size if config.model.source == "registry" else None
    d = config.data
    return entry.source(data, entry.parse_options(config.task.options), batch_size=d.batch_size,
                        eval_batch_size=d.eval_batch_size or d.batch_size, val_split=d.val_split,
                        split_seed=d.split_seed, model_input_size=model_size)  # fmt: skip


def build_objective(source: DataSource, config: RunConfig) -> Objective:
    entry = get_task(source.task)
    return entry.objective(source, entry.parse_options(config.task.options))


def model_builder(config: RunConfig, *, model_file: str | None = None) -> Callable[..., nn.Module]:
    """The class or function that builds the run's model (for a file, only under the rules of model_files)."""
    mc = config.model
    if mc.source == "registry":
        return get_model_entry(mc.name).builder
    if mc.source == "file":
        return recorded_builder(mc.name, mc.file, mc.file_sha256, model_file=model_file)
    raise ConfigError(f"this run's model ({mc.name}) was given to divekit.fit as a Python object; load the run "
                      f"in Python with load_run(folder, model={mc.name}(...))")  # fmt: skip


def build_model(config: RunConfig, model_options: dict[str, Any], *, pretrained: bool = True,
                builder: Callable[..., nn.Module] | None = None) -> nn.Module:  # fmt: skip
    """Create the configured model for the data's facts, then initialise it.

    With ``model.weights`` the pretrained weights are loaded and the output
    layer re-initialised for fine-tuning; ``pretrained=False`` builds the same
    architecture without reading them (a checkpoint will fill it).
    """
    builder = builder or model_builder(config)
    mc = config.model
    options = finetune.builder_options(mc.weights, {**supported_options(builder, model_options), **mc.options})
    model = apply_init(call_builder(builder, options, what=f"model {mc.name!r}"), mc.init)
    if mc.weights is not None:
        num_classes = options.get("num_classes", model_options.get("num_classes"))
        finetune.prepare_finetuning(model, weights=mc.weights, expected_name=mc.name, num_classes=num_classes,
                                    freeze=mc.freeze_backbone, load=pretrained, download=config.data.download,
                                    mirror=config.data.mirror, head_lr_mult=mc.head_lr_mult, log=note)  # fmt: skip
    return model


def optimizer_groups(config: RunConfig, model: nn.Module) -> list[dict[str, Any]] | None:
    """Fine-tuning's parameter groups (head at ``lr * head_lr_mult``), or ``None`` for one group."""
    if config.model.weights is None:
        return None
    return finetune.param_groups(model, lr=config.optim.lr, head_lr_mult=config.model.head_lr_mult)


def check_model_fits(model: nn.Module, objective: Objective, batch: Any) -> None:
    """One forward pass on one batch, in eval mode, leaving every random stream and the model as they were.

    Raises ConfigError when the output does not fit the task, and when the
    model fails on the data (e.g. a layer built for 3 channels fed 1).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            objective.check_output(model, take_rows(batch, slice(0, 2)))  # two rows tell the shapes
    except DivekitError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"the model fails on one batch of the data ({type(err).__name__}: {first[:300]}); check "
                          "its options (model.options) against the data's shapes and the task") from err  # fmt: skip
    finally:
        model.train(was_training)
