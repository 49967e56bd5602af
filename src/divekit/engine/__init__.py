"""The training engine: the model-agnostic trainer, checkpoints, distribution, speed options."""
