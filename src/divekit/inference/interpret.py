"""Looking at what a model learnt: predictions, confusions and top losses of a classifier; batches of any data set.

:class:`ClassificationInterpretation` runs a classifier over a held-out split
once and keeps each example's image, label and class probabilities; from
those come a grid of predictions (wrong ones in red), the confusion matrix,
the examples with the largest loss and the accuracy of each class, as
figures (a notebook shows them inline) or as files (``save``, what
``divekit interpret`` writes). :func:`show_batch` shows one training batch of
any data set as the model receives it, augmentation included.
"""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.batching import take_rows
from divekit.device import resolve_device
from divekit.errors import ConfigError
from divekit.io import atomic_write_text

GRID = 16  # images in a prediction grid


def to_uint8(X: torch.Tensor) -> torch.Tensor | None:
    """Model inputs ``(N, C, H, W)`` as uint8 images to look at (None for inputs that are not images).

    Inputs in [0, 1] are scaled by 255; others (normalised) are stretched per image to [0, 255].
    """
    if X.dim() != 4 or X.shape[1] not in (1, 3):
        return None
    X = X.detach().float().cpu()
    if X.min() < 0 or X.max() > 1:
        low = X.amin(dim=(1, 2, 3), keepdim=True)
        X = (X - low) / (X.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
    return X.mul(255).round().to(torch.uint8)


@dataclass
class ClassificationInterpretation:
    """A classifier's predictions on a split, kept to be looked at.

    Attributes:
        images: uint8 ``(N, C, H, W)`` as the examples look (``None`` when the inputs are not images).
        labels: ``(N,)`` true classes.
        probs: ``(N, K)`` predicted class probabilities.
        class_names: a name per class.
    """

    images: torch.Tensor | None
    labels: torch.Tensor
    probs: torch.Tensor
    class_names: list[str]

    @classmethod
    @torch.no_grad()
    def from_model(cls, model: nn.Module, batches: Iterable[Any], *, class_names: Sequence[str] | None = None,
                   device: str = "auto", transfer: Any = None) -> ClassificationInterpretation:  # fmt: skip
        """Run ``model`` (in eval mode) over ``(X, y)`` batches, e.g. a ``DataLoader`` of the test split.

        ``transfer(batch, device=, channels_last=, train=)`` prepares a batch
        (a data source's); the images shown are the raw ones when they are uint8.
        """
        dev = resolve_device(device)
        was_training = model.training
        model.to(dev).eval()
        images, labels, probs = [], [], []
        try:
            for batch in batches:
                X, y = (transfer(batch, device=dev, channels_last=False, train=False) if transfer else
                        (batch[0].to(dev), batch[1].to(dev)))  # fmt: skip
                raw = batch[0] if batch[0].dtype == torch.uint8 else to_uint8(X)
                images.append(raw)
                labels.append(y.cpu())
                probs.append(F.softmax(model(X).float(), dim=1).cpu())
        finally:
            model.train(was_training)
        if not labels:
            raise ConfigError("no batches to interpret: the split is empty")
        probs_ = torch.cat(probs)
        names = list(class_names) if class_names is not None else [str(i) for i in range(probs_.shape[1])]
        shown = torch.cat(images) if all(i is not None for i in images) else None
        return cls(shown, torch.cat(labels).long(), probs_, names)

    @classmethod
    def from_run(cls, run_dir: str | Path, *, split: str = "test", which: str = "best", device: str = "cpu",
                 data_dir: str | None = None, model_file: str | None = None) -> ClassificationInterpretation:  # fmt: skip
        """The run's model on one held-out split of its data set (``test`` or ``val``), reloaded as in training."""
        from divekit.runs.build import build_source
        from divekit.runs.load import load_run

        run = load_run(run_dir, which=which, device=device, model_file=model_file)
        if run.task != "classification":
            raise ConfigError(f"{run_dir} is a {run.task} run; this interprets classifiers")
        if run.config.data.name == "python":
            raise ConfigError(f"{run_dir} was trained on batches given to divekit.fit; interpret it in Python with "
                              "ClassificationInterpretation.from_model(model, batches)")  # fmt: skip
        if data_dir is not None:
            run.config.data.data_dir = data_dir
        source = build_source(run.config)
        batches = source.eval_batches().get(split)
        if batches is None:
            raise ConfigError(f"{run_dir} has no {split} split (a validation split needs data.val_split)")
        return cls.from_model(run.model, batches, class_names=run.info.get("class_names"), device=device,
                              transfer=source.transfer)  # fmt: skip

    # ------------------------------------------------------------ the numbers
    @property
    def predictions(self) -> torch.Tensor:
        return self.probs.argmax(dim=1)

    @property
    def losses(self) -> torch.Tensor:
        """Each example's cross-entropy loss, ``-log p(true class)``."""
        return -self.probs.gather(1, self.labels[:, None]).squeeze(1).clamp_min(1e-12).log()

    def confusion_matrix(self) -> np.ndarray:
        """``(K, K)`` counts: row = true class, column = predicted class."""
        k = len(self.class_names)
        flat = self.labels * k + self.predictions
        return torch.bincount(flat, minlength=k * k).reshape(k, k).numpy()

    def per_class_accuracy(self) -> list[tuple[str, int, int, float]]:
        """``(class name, correct, total, accuracy)`` per class (accuracy NaN for a class absent from the split)."""
        matrix = self.confusion_matrix()
        totals = matrix.sum(axis=1)
        return [(name, int(matrix[i, i]), int(totals[i]), matrix[i, i] / totals[i] if totals[i] else float("nan"))
                for i, name in enumerate(self.class_names)]  # fmt: skip

    def top_losses(self, k: int = GRID) -> list[int]:
        """Indices of the ``k`` examples with the largest loss, largest first."""
        return self.losses.argsort(descending=True)[:k].tolist()

    def most_confused(self, *, min_count: int = 1) -> list[tuple[str, str, int]]:
        """``(true, predicted, count)`` of the off-diagonal cells, most frequent first."""
        matrix = self.confusion_matrix()
        cells = [(int(matrix[i, j]), i, j) for i in range(len(matrix)) for j in range(len(matrix)) if i != j]
        return [(self.class_names[i], self.class_names[j], n) for n, i, j in sorted(cells, reverse=True) if n >= min_count]

    # ------------------------------------------------------------ the figures
    def grid_figure(self, indices: Sequence[int] | None = None, *, title: str = "") -> Any:
        """Images with ``predicted (probability)`` and the true label when wrong; wrong ones in red."""
        from divekit.plot import image_grid_figure

        if self.images is None:
            raise ConfigError("these inputs are not images (N, 1|3, H, W): there is nothing to draw in a grid")
        indices = list(range(min(GRID, len(self.labels)))) if indices is None else list(indices)
        preds, probs = self.predictions, self.probs.max(dim=1).values
        titles, colors = [], []
        for i in indices:
            wrong = int(preds[i]) != int(self.labels[i])
            name = self.class_names[int(preds[i])]
            titles.append(f"{name} ({probs[i]:.2f})" + (f"\ntrue: {self.class_names[int(self.labels[i])]}" if wrong else ""))
            colors.append("red" if wrong else "black")
        fig = image_grid_figure(self.images[indices].numpy(), titles, title_colors=colors)
        if title:
            fig.suptitle(title, fontsize=10)
        return fig

    def top_losses_figure(self, k: int = GRID) -> Any:
        return self.grid_figure(self.top_losses(k), title=f"the {k} largest losses")

    def confusion_figure(self) -> Any:
        from divekit.plot_interpret import confusion_figure

        return confusion_figure(self.confusion_matrix(), self.class_names)

    def per_class_figure(self) -> Any:
        from divekit.plot_interpret import per_class_figure

        rows = self.per_class_accuracy()
        return per_class_figure([r[0] for r in rows], [0.0 if r[2] == 0 else r[3] for r in rows], [r[2] for r in rows])

    # ------------------------------------------------------------ the files
    def save(self, out_dir: str | Path) -> list[Path]:
        """Write ``predictions.png``, ``top-losses.png``, ``confusion-matrix.png``, ``per-class-accuracy.png``,
        ``predictions.csv`` (one row per example) and ``per-class.csv``; return their paths."""
        from divekit.plot import _save

        out = Path(out_dir)
        figures = {"confusion-matrix.png": self.confusion_figure, "per-class-accuracy.png": self.per_class_figure}
        if self.images is not None:
            figures = {"predictions.png": self.grid_figure, "top-losses.png": self.top_losses_figure, **figures}
        for name, make in figures.items():
            _save(make(), out / name)
        atomic_write_text(out / "predictions.csv", self.predictions_csv())
        atomic_write_text(out / "per-class.csv", _csv(["class", "correct", "total", "accuracy"], self.per_class_accuracy()))
        return [out / name for name in figures] + [out / "predictions.csv", out / "per-class.csv"]

    def predictions_csv(self) -> str:
        losses, probs = self.losses, self.probs.max(dim=1).values
        rows = [(i, self.class_names[int(t)], self.class_names[int(p)], f"{float(q):.6f}", f"{float(l):.6f}",
                 int(t) == int(p)) for i, (t, p, q, l) in enumerate(zip(self.labels, self.predictions, probs, losses))]  # fmt: skip
        return _csv(["index", "true", "predicted", "probability", "loss", "correct"], rows)


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = _io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def sample_continuations(generator: Any, prefixes: Sequence[str], *, temperatures: Sequence[float] = (0.0, 0.6, 1.0),
                         length: int = 60, seed: int = 0) -> list[tuple[str, float, str]]:  # fmt: skip
    """``(prefix, temperature, text)`` for each prefix and temperature (0: greedy), from a
    :class:`~divekit.inference.generate.TextGenerator`; seeded, so the samples repeat."""
    out = []
    for prefix in prefixes:
        for temperature in temperatures:
            rng = torch.Generator().manual_seed(seed)
            out.append((prefix, temperature, generator.complete(prefix, length=length, temperature=temperature,
                                                                generator=rng)))  # fmt: skip
    return out


def write_samples(samples: Sequence[tuple[str, float, str]], path: str | Path) -> Path:
    atomic_write_text(path, _csv(["prefix", "temperature", "text"], samples))
    return Path(path)


def show_batch(data: Any, *, count: int = 16, augment: str | Sequence[str] | None = None, seed: int = 0,
               config: Mapping[str, Any] | None = None) -> Any:  # fmt: skip
    """One training batch of a data set as the model receives it (augmented, if asked).

    Args:
        data: a data-set name (``"digits"``, ``"fashion-mnist"``...) or a :class:`~divekit.data.sources.base.DataSource`.
        count: examples to show.
        augment: training augmentations (``"flip,crop,color"``), for image data given by name.
        config: other settings as dotted keys, e.g. ``{"data.data_dir": "~/data/fashion-mnist"}``.

    Returns a figure (images with their labels) for image data, else the
    batch's ``(input, target)`` pairs as text.
    """
    source = data if not isinstance(data, str) else _source(data, augment=augment, config=config)
    first = next(iter(source.train_batches(seed=seed).iter_from(0)))
    batch = source.transfer(take_rows(first, slice(0, count)), device=torch.device("cpu"), channels_last=False,
                            train=True)  # fmt: skip
    if source.task == "classification":
        from divekit.plot import image_grid_figure

        names = source.data.class_names
        return image_grid_figure(to_uint8(batch[0]).numpy(), [names[int(c)] for c in batch[1]])
    return _text_rows(source, batch)


def _source(name: str, *, augment: Any, config: Mapping[str, Any] | None) -> Any:
    from divekit.runs.build import build_source, resolve_config

    overrides = dict(config or {})
    if augment:
        overrides["task.options.augment"] = augment
    return build_source(resolve_config(_any_model(name), data=name, overrides=overrides))


def _any_model(data: str) -> str:
    """A registered model of the data set's task (building a source needs a config, which names one)."""
    from divekit.data.registry import get_dataset_entry
    from divekit.models import list_models

    return list_models(get_dataset_entry(data).task)[0]


def _text_rows(source: Any, batch: Any) -> list[tuple[str, str]]:
    if source.task == "language-model":
        join = "".join if source.options.token == "char" else " ".join
        X, Y = batch[0], batch[1]
        return [(join(source.vocab.to_tokens(x.tolist())), join(source.vocab.to_tokens(y.tolist()))) for x, y in zip(X, Y)]
    if source.task == "seq2seq":
        src, src_valid, tgt, tgt_valid = batch[:4]
        return [(" ".join(source.src_vocab.to_tokens(s[:n].tolist())), " ".join(source.tgt_vocab.to_tokens(t[:m].tolist())))
                for s, n, t, m in zip(src, src_valid.tolist(), tgt, tgt_valid.tolist())]  # fmt: skip
    return [(" ".join(f"{v:.3f}" for v in x.flatten().tolist()), " ".join(f"{v:.3f}" for v in torch.as_tensor(y).flatten().tolist()))
            for x, y in zip(batch[0], batch[1])]  # fmt: skip


def interpret_run(run_dir: str | Path, out_dir: str | Path, *, split: str = "test", which: str = "best",
                  device: str = "cpu", data_dir: str | None = None, model_file: str | None = None,
                  prefixes: Sequence[str] = ("the",), temperatures: Sequence[float] = (0.0, 0.6, 1.0),
                  length: int = 60, sentences: Sequence[str] = (), count: int = 3) -> list[Path]:  # fmt: skip
    """Write what explains a trained run into ``out_dir`` and return the paths, by the run's task.

    A classifier: prediction grid, top losses, confusion matrix, per-class
    accuracy (PNGs) and the predictions (CSV). A language model: continuations
    of ``prefixes`` at each temperature (``samples.csv``). A translation model:
    attention maps of ``sentences`` (default: the first ``count`` held-out
    sources) and their translations (``translations.csv``).
    """
    from divekit.runs.load import load_run

    task = load_run(run_dir, which=which, device=device, model_file=model_file).task
    kw = {"which": which, "device": device, "model_file": model_file}
    if task == "classification":
        return ClassificationInterpretation.from_run(run_dir, split=split, data_dir=data_dir, **kw).save(out_dir)
    if task == "language-model":
        from divekit.inference.generate import TextGenerator

        samples = sample_continuations(TextGenerator.from_run(run_dir, **kw), prefixes, temperatures=temperatures,
                                       length=length)  # fmt: skip
        return [write_samples(samples, Path(out_dir) / "samples.csv")]
    if task == "seq2seq":
        return _translation_figures(run_dir, out_dir, sentences=sentences, count=count, data_dir=data_dir, **kw)
    raise ConfigError(f"{run_dir} is a {task} run; interpretation covers classification, language-model and seq2seq")


def _translation_figures(run_dir: str | Path, out_dir: str | Path, *, sentences: Sequence[str], count: int,
                         data_dir: str | None, **kw: Any) -> list[Path]:  # fmt: skip
    from divekit.inference.translate import Translator
    from divekit.plot_attention import save_attention_maps

    translator = Translator.from_run(run_dir, **kw)
    references = {} if sentences else _held_out_pairs(run_dir, count=count, data_dir=data_dir)
    chosen = list(sentences) or list(references)
    written, rows = [], []
    for i, sentence in enumerate(chosen):
        maps = translator.attention_maps(sentence)
        reference = references.get(sentence)
        result = translator.translate_batch([sentence])[0]
        rows.append((sentence, result.text, reference or "", f"{result.bleu(reference):.4f}" if reference else ""))
        written += save_attention_maps(maps, Path(out_dir) / f"sentence-{i + 1}")
    atomic_write_text(Path(out_dir) / "translations.csv", _csv(["source", "translation", "reference", "book_bleu"], rows))
    return written + [Path(out_dir) / "translations.csv"]


def _held_out_pairs(run_dir: str | Path, *, count: int, data_dir: str | None) -> dict[str, str]:
    """The first ``count`` test (else validation) sources of a translation run, with their first reference."""
    from divekit.runs.build import build_source
    from divekit.runs.folder import read_run_config

    config = read_run_config(run_dir)
    if data_dir is not None:
        config.data.data_dir = data_dir
    held_out = build_source(config).held_out
    grouped = held_out.get("test") or held_out.get("val") or {}
    if not grouped:
        raise ConfigError(f"{run_dir} holds out no sentences; name the sentences to draw")
    return {source: targets[0] for source, targets in list(grouped.items())[:count]}
