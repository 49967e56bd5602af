"""Data sets, file readers and in-memory batch loaders.

Importing this package registers every data set.
"""

from divekit.data import (  # noqa: F401  (imported to register)
    builtin, cifar, corpora, csv_series, image_folder, numbers_fr, pairs, series, translation,
)
from divekit.data.images import ImageClassificationData, ImageSplit
from divekit.data.loader import TensorBatches
from divekit.data.registry import DatasetEntry, get_dataset_entry, list_datasets, load_dataset, register_dataset

__all__ = [
    "DatasetEntry",
    "ImageClassificationData",
    "ImageSplit",
    "TensorBatches",
    "get_dataset_entry",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
