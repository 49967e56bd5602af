"""divekit: the *Dive into Deep Learning* curriculum as a tested library and CLI.

The package is organised by concern:

- ``divekit.nn``: building blocks, each from scratch beside PyTorch's own;
- ``divekit.models``: complete networks behind a name registry;
- ``divekit.data``: data sets, readers, data sources and batching (sharding across processes included);
- ``divekit.tasks``: objectives (loss and metrics) per task: classification, language models, seq2seq, regression;
- ``divekit.engine``: the model-agnostic training loop, checkpoints, distribution, speed options;
- ``divekit.runs``: runs in run folders: ``fit`` (any model, any batches), ``train`` (from a config),
  resume, load, evaluate, fine-tune, export;
- ``divekit.inference``: decoding, generation, translation, prediction, BLEU;
- ``divekit.cli``: the ``divekit`` command.

The front door is ``divekit.fit(model, train_batches, val_batches, epochs=..., lr=...)``, with
``divekit.evaluate`` and ``divekit.predict`` beside it. They are imported on first use, so
``import divekit`` (and the command line's start) stays light.
"""

from typing import Any

__version__ = "0.1.0"

_LAZY = {"fit": "divekit.runs.fit", "evaluate": "divekit.runs.fit", "predict": "divekit.runs.fit",
         "load_run": "divekit.runs.load", "RunResult": "divekit.engine.result", "lr_find": "divekit.runs.lr_find"}  # fmt: skip

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'divekit' has no attribute {name!r}")
