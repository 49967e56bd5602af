"""divekit: the *Dive into Deep Learning* curriculum as a tested library and CLI.

The package is organised by concern:

- ``divekit.nn``: building blocks, each from scratch beside PyTorch's own;
- ``divekit.models``: complete networks behind a name registry;
- ``divekit.data``: data sets, readers and in-memory batch loaders;
- ``divekit.engine``: the model-agnostic training loop, checkpoints, distribution, speed options;
- ``divekit.tasks``: objectives (loss and metrics) per task: classification, language models, seq2seq, regression;
- ``divekit.runs``: configured runs in run folders: train, resume, load, evaluate, fine-tune, export;
- ``divekit.inference``: decoding, generation, translation, prediction, BLEU;
- ``divekit.cli``: the ``divekit`` command.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
