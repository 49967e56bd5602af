"""Tasks: what a learning problem's loss and metrics are, each paired with the data source that feeds it.

Importing this package registers the four tasks of the notes: ``classification``,
``language-model``, ``seq2seq`` and ``regression``.
"""

from divekit.tasks import classification, language_model, regression, seq2seq  # noqa: F401  (registers the tasks)
from divekit.tasks.base import TASK_REGISTRY, Objective, StepOutput, TaskEntry, get_task, register_task
from divekit.tasks.classification import Classification
from divekit.tasks.custom import LossObjective
from divekit.tasks.language_model import LanguageModeling
from divekit.tasks.regression import Regression
from divekit.tasks.seq2seq import Seq2Seq

__all__ = [
    "TASK_REGISTRY",
    "Classification",
    "LanguageModeling",
    "LossObjective",
    "Objective",
    "Regression",
    "Seq2Seq",
    "StepOutput",
    "TaskEntry",
    "get_task",
    "register_task",
]
