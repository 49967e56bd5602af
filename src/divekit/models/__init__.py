"""Complete networks, found by name through the registry.

Importing this package registers every model family.
"""

# Imported to register their models.
from divekit.models import alexnet, densenet, googlenet, lenet, linear, nin, resnet, vgg  # noqa: F401
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
