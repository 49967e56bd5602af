"""TensorBoard logging as a callback, through PyTorch's own ``torch.utils.tensorboard``.

What is written (main process only: under DDP the trainer gives callbacks to rank 0 alone):

- every number of every epoch record: metrics of every split as ``NAME/SPLIT``
  (``loss/train``, ``acc/val``, ``examples_per_s/train``), everything else as
  ``run/KEY`` (``run/lr``, ``run/epoch_time_s``), at step = epoch;
- the running training metrics every ``train.sync_every`` steps (``step/train_loss``),
  from ``on_sync``, so the device is never read for logging;
- the hyperparameters with the final (and best) metrics, for TensorBoard's HPARAMS tab;
- a few sample predictions per epoch, made by a ``samples`` hook (see :class:`Samples`);
- the model graph, when ``torch.jit.trace`` can trace the model on one batch.

The callback knows no task: what a sample looks like is the hook's business.
By default the hook comes from the run folder's facts (``task.json`` and the
vocabularies, the same files prediction reads), see :mod:`divekit.inference.samples`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from divekit.data.batching import take_rows
from divekit.engine.callbacks import Callback
from divekit.errors import ConfigError

if TYPE_CHECKING:
    from divekit.engine.result import RunResult
    from divekit.engine.trainer import Trainer

SPLITS = ("train", "val", "test")
NUM_SAMPLES = 8
LOG_FOLDER = "tensorboard"


@dataclass
class Samples:
    """What a samples hook shows for one epoch: images with captions, and/or lines of text.

    Attributes:
        images: ``(N, C, H, W)`` floats in [0, 1] (one caption each), or ``None``.
        captions: one line per image, e.g. ``"pred 7 (0.93) / true 7"``.
        texts: lines of text (generated text, translations), shown as one Markdown list.
    """

    images: torch.Tensor | None = None
    captions: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


# (model in eval mode, a few evaluation examples already on the device) -> what to show
SampleFn = Callable[[nn.Module, Any], Samples]


def metric_tag(key: str) -> str:
    """The TensorBoard tag of an epoch record's key: ``val_acc`` -> ``acc/val``, ``lr`` -> ``run/lr``."""
    split, _, name = key.partition("_")
    return f"{name}/{split}" if split in SPLITS and name else f"run/{key}"


def log_folder(setting: bool | str | None, out_dir: Path | None) -> Path | None:
    """Where ``train.tensorboard`` writes: a named folder, the run folder's ``tensorboard/``, or nowhere."""
    if setting is None or setting is False:
        return None
    if isinstance(setting, str):
        return Path(setting).expanduser()
    if out_dir is None:
        raise ConfigError("train.tensorboard=True writes into the run folder, and this run has none: pass out_dir, "
                          "or set train.tensorboard to a log folder")  # fmt: skip
    return out_dir / LOG_FOLDER


def summary_writer(log_dir: Path, *, purge_step: int | None) -> Any:
    """A ``SummaryWriter``, or one clear line when the extra is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ConfigError(f"train.tensorboard needs the tensorboard package ({err}); install the extra: "
                          "pip install 'divekit[tensorboard]'") from err  # fmt: skip
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


class TensorBoardLogger(Callback):
    """Write a run's curves, samples, graph and hyperparameters for TensorBoard.

    Args:
        log_dir: the event files' folder (one TensorBoard "run").
        samples: the samples hook (``None``: the run folder's default, if any).
        hparams: hyperparameters to show beside the final metrics (default: the
            run folder's ``config.json``, flattened, or the trainer's settings).
        graph: also write the model graph (traced on one batch).
    """

    def __init__(self, log_dir: str | Path, *, samples: SampleFn | None = None,
                 hparams: dict[str, Any] | None = None, graph: bool = True) -> None:  # fmt: skip
        self.log_dir = Path(log_dir)
        self.samples = samples
        self.hparams = hparams
        self.graph = graph
        self.writer: Any = None
        self.notes: list[str] = []

    @classmethod
    def for_trainer(cls, trainer: Trainer) -> TensorBoardLogger:
        """The logger ``train.tensorboard`` asks for (it must be on)."""
        folder = log_folder(trainer.train_config.tensorboard, trainer.out_dir)
        if folder is None:
            raise ConfigError("train.tensorboard is off; set it to true or to a log folder")
        return cls(folder, samples=default_samples(trainer.out_dir))

    # ----------------------------------------------------------------- hooks
    def on_fit_start(self, trainer: Trainer) -> None:
        step = trainer.progress.global_step
        # a resumed run drops what the interrupted one wrote after its checkpoint
        self.writer = summary_writer(self.log_dir, purge_step=step or None)
        if self.graph and step == 0:
            self._write_graph(trainer)

    def on_sync(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"step/{key}", value, trainer.progress.global_step)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        epoch = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(metric_tag(key), value, epoch)
        self._write_samples(trainer, epoch)
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer, result: RunResult) -> None:
        if self.writer is None:
            return
        if result.history:
            self._write_hparams(trainer, result)
        self.writer.close()
        self.writer = None

    # ----------------------------------------------------------------- parts
    def _note(self, trainer: Trainer, message: str) -> None:
        """Say once why a part is missing (a graph that does not trace is not worth a failed run)."""
        if message not in self.notes:
            self.notes.append(message)
            trainer.log(f"tensorboard: {message}")

    def _example(self, trainer: Trainer, count: int) -> Any:
        """The first ``count`` examples of the validation (else test, else training) data, on the device."""
        data: Iterable[Any] | None = trainer.eval_data.get("val") or trainer.eval_data.get("test")
        batch = next(iter(data if data is not None else trainer.batches.iter_from(0)), None)
        if batch is None:
            return None
        return trainer.transfer(take_rows(batch, slice(0, count)), device=trainer.device,
                                channels_last=trainer.channels_last, train=False)  # fmt: skip

    def _write_graph(self, trainer: Trainer) -> None:
        batch = self._example(trainer, 2)
        inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
        model = trainer.raw_model
        was_training = model.training
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's warnings are about the model, not this run
                self.writer.add_graph(model.eval(), inputs, use_strict_trace=False)
        except Exception as err:  # noqa: BLE001 - any tracing failure only costs the graph
            self._note(trainer, f"no model graph ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
        finally:
            model.train(was_training)

    def _write_samples(self, trainer: Trainer, epoch: int) -> None:
        if self.samples is None:
            return
        batch = self._example(trainer, NUM_SAMPLES)
        model = trainer.raw_model
        was_training = model.training
        try:
            with torch.no_grad():
                shown = self.samples(model.eval(), batch)
        finally:
            model.train(was_training)
        if shown.images is not None:
            self.writer.add_images("samples/images", shown.images.float().cpu().clamp(0, 1), epoch)
        if shown.captions or shown.texts:
            lines = [f"{i}. {c}" for i, c in enumerate(shown.captions)] + [f"- {t}" for t in shown.texts]
            self.writer.add_text("samples/text", "\n".join(lines), epoch)

    def _write_hparams(self, trainer: Trainer, result: RunResult) -> None:
        from torch.utils.tensorboard.summary import hparams

        params = {k: v for k, v in self._hparams(trainer).items() if isinstance(v, (bool, int, float, str))}
        final = {f"hparam/final_{k}": v for k, v in result.final.items() if _is_metric(k, v)}
        best = {f"hparam/best_{k}": v for k, v in (result.best or {}).items() if _is_metric(k, v)}
        metrics = {**final, **best}
        for summary in hparams(params, metrics):
            self.writer.file_writer.add_summary(summary)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, result.final["epoch"])

    def _hparams(self, trainer: Trainer) -> dict[str, Any]:
        if self.hparams is not None:
            return self.hparams
        config = trainer.out_dir / "config.json" if trainer.out_dir is not None else None
        if config is not None and config.is_file():
            return flat(json.loads(config.read_text(encoding="utf-8")))
        settings = {"train": vars(trainer.train_config), "optim": vars(trainer.optim_config)}
        return flat(settings)


def _is_metric(key: str, value: Any) -> bool:
    return key.partition("_")[0] in SPLITS and isinstance(value, (int, float)) and not isinstance(value, bool)


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys; lists and mappings that stay values become JSON text."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        elif value is not None:
            out[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
    return out


def default_samples(out_dir: Path | None) -> SampleFn | None:
    """The samples hook from a run folder's facts (class names, vocabularies), or ``None`` without a folder."""
    if out_dir is None or not (out_dir / "task.json").is_file():
        return None
    # Imported here: rendering a sample is inference's business, which the loop itself never needs.
    from divekit.inference.samples import samples_from_folder

    return samples_from_folder(out_dir)

