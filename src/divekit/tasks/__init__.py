"""Tasks: what a learning problem's loss and metrics are (classification, language models, seq2seq, regression)."""

from divekit.tasks import classification, language_model, regression, seq2seq  # noqa: F401  (registers the tasks)
from divekit.tasks.base import Runtime, StepOutput, Task, register_task

__all__ = ["Runtime", "StepOutput", "Task", "register_task"]
