"""divekit: the *Dive into Deep Learning* curriculum as a tested library and CLI.

The package is organised by concern:

- ``divekit.nn``: building blocks, each from scratch beside PyTorch's own;
- ``divekit.models``: complete networks behind a name registry;
- ``divekit.data``: data sets, readers and in-memory batch loaders;
- ``divekit.train``: the model-agnostic trainer, tasks, checkpoints and runs;
- ``divekit.cli``: the ``divekit`` command.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
