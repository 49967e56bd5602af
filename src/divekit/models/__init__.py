"""Complete networks, found by name through the registry.

Importing this package registers every model.
"""

from divekit.models import (  # noqa: F401  (imported to register)
    alexnet, autoregressive, densenet, googlenet, lenet, linear, nin, resnet, rnn, seq2seq, transformer, vgg,
)
from divekit.models.registry import (
    MODELS,
    ModelEntry,
    create_model,
    get_model_entry,
    list_models,
    register_model,
    supported_options,
)

__all__ = [
    "MODELS",
    "ModelEntry",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
    "supported_options",
]
