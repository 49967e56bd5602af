"""Complete networks, found by name through the registry.

Importing this package registers every model family.
"""

from divekit.models import lenet, linear, seq2seq, transformer  # noqa: F401  (imported to register)
from divekit.models.registry import (
    FAMILIES,
    ModelEntry,
    create_model,
    get_model_entry,
    list_models,
    register_model,
    supported_options,
)

__all__ = [
    "FAMILIES",
    "ModelEntry",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
    "supported_options",
]
