"""Load a trained run back: its model with its best or last weights, its facts, its vocabularies; score it.

Loading checks that the run folder agrees with itself: the class names, the
vocabularies and the input size in ``task.json`` and beside it must fit the
model's weights, so an edited or damaged folder is one clear line instead of
a wrong answer or a crash later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from divekit.data.text import Vocab
from divekit.device import resolve_device
from divekit.engine import checkpoint as ckpt
from divekit.engine.evaluation import evaluate_splits
from divekit.errors import CheckpointError, ConfigError
from divekit.io import read_json_object
from divekit.runs.build import build_model, build_objective, build_source, model_builder
from divekit.runs.config import RunConfig
from divekit.runs.folder import read_run_config

# task.json of runs made before the re-cut named the task by its data kind
OLD_KINDS = {"image-classification": "classification", "text": "language-model", "translation": "seq2seq",
             "sequence": "regression"}  # fmt: skip
MAX_SIDE = 8192
MAX_CHANNELS = 4


@dataclass
class LoadedRun:
    """A trained model restored from its run folder."""

    folder: Path
    config: RunConfig
    info: dict[str, Any]
    model: nn.Module
    checkpoint: str

    @property
    def task(self) -> str:
        """The run's task (``classification``, ``language-model``, ``seq2seq``, ``regression``...)."""
        task = self.info.get("task") or self.info.get("kind", "")
        return OLD_KINDS.get(task, task)

    def vocab(self, name: str = "vocab.json", *, size_option: str = "vocab_size") -> Vocab:
        """The vocabulary file ``name`` of the run, checked against the model's ``size_option``."""
        path = self.folder / name
        if not path.is_file():
            raise CheckpointError(f"{path} is missing; the run folder is incomplete")
        vocab = Vocab.load(path)
        expected = self.info.get("model_options", {}).get(size_option)
        if expected is not None and len(vocab) != expected:
            raise CheckpointError(f"{path} holds {len(vocab):,} tokens but the model was trained on {expected:,}; "
                                  "the run folder is inconsistent (an edited or mixed-up file)")  # fmt: skip
        return vocab


def read_task_info(folder: Path) -> dict[str, Any]:
    info = read_json_object(folder / "task.json", what="the run's facts", error=CheckpointError)
    check_info(folder, info)
    return info


def check_info(folder: Path, info: dict[str, Any]) -> None:
    """Refuse a ``task.json`` whose facts disagree with each other or are absurd."""
    options = info.get("model_options", {})
    names = info.get("class_names")
    if names is not None:
        classes = options.get("num_classes", info.get("num_classes"))
        if not isinstance(names, list) or (classes is not None and len(names) != classes):
            raise CheckpointError(f"{folder}/task.json lists {len(names) if isinstance(names, list) else 'no'} class "
                                  f"names for a model with {classes} outputs; the run folder is inconsistent")  # fmt: skip
    size = info.get("input_size")
    if size is not None:
        ok = isinstance(size, list) and len(size) == 3 and all(isinstance(s, int) and s >= 1 for s in size)
        if not ok or size[0] > MAX_CHANNELS or max(size[1:]) > MAX_SIDE:
            raise CheckpointError(f"{folder}/task.json has an impossible input_size {size!r} (expected [C, H, W] "
                                  f"with C <= {MAX_CHANNELS} and sides <= {MAX_SIDE}); the run folder is inconsistent")  # fmt: skip


def load_run(folder: str | Path, *, which: str = "best", device: str = "cpu", model: nn.Module | None = None,
             model_file: str | None = None) -> LoadedRun:  # fmt: skip
    """Rebuild the model of a run folder and load its ``best`` or ``last`` weights.

    Args:
        which: ``best`` (the best epoch on the validation split; the last
            checkpoint when the run had none) or ``last``.
        model: for a run of :func:`divekit.fit` on a model object: a fresh model of the same architecture.
        model_file: for a run trained from a file that moved: the file (see :mod:`divekit.runs.model_files`).
    """
    folder = Path(folder)
    config = read_run_config(folder)
    info = read_task_info(folder)
    path = folder / "checkpoints" / f"{which}.pt"
    if which == "best" and not path.exists():
        path = folder / "checkpoints" / "last.pt"
    if not path.exists():
        raise CheckpointError(f"{folder} has no checkpoint yet (checkpoints/{which}.pt); train it first")
    state = ckpt.load_checkpoint(path)
    if model is None:
        builder = model_builder(config, model_file=model_file)
        model = build_model(config, info.get("model_options", {}), pretrained=False, builder=builder)
    ckpt.load_model_state(model, state["model"], source=str(path))
    model.to(resolve_device(device)).eval()
    return LoadedRun(folder, config, info, model, str(path))


def evaluate_run(folder: str | Path, *, which: str = "best", device: str = "cpu", data_dir: str | None = None,
                 split: str = "test", model_file: str | None = None) -> dict[str, float]:  # fmt: skip
    """Score a run's model on one held-out split of its data set (reloaded as in training)."""
    run = load_run(folder, which=which, device=device, model_file=model_file)
    config = run.config
    if data_dir is not None:
        config.data.data_dir = data_dir
    if config.data.name == "python":
        raise ConfigError(f"{folder} was trained on batches given to divekit.fit; score it in Python with "
                          "divekit.evaluate(model, batches)")  # fmt: skip
    source = build_source(config)
    batches = source.eval_batches().get(split)
    if batches is None:
        return {}
    objective = build_objective(source, config)
    device_ = next(run.model.parameters()).device
    return evaluate_splits(run.model, objective, {split: batches}, device=device_, transfer=source.transfer)
