"""Imported by the kill -9 test's forkserver: run one tiny training so forked trials start warm.

PyTorch initialises kernels and thread pools lazily; without this, every
forked trial pays for that in its first epoch.
"""

from divekit.runs import resolve_config, train

train(resolve_config("mlp", overrides={"train.epochs": 1, "train.progress": False, "train.threads": 1}),
      write=False, log=lambda message: None)  # fmt: skip
