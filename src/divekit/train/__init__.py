"""Training: the model-agnostic trainer, tasks, checkpoints and run folders."""

from divekit.train.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from divekit.train.run import (
    LoadedRun,
    RunResult,
    evaluate_run,
    load_run,
    resolve_config,
    resume,
    train,
)
from divekit.train.task import Runtime, StepOutput, Task, register_task
from divekit.train.trainer import Callback, FitResult, Trainer, TrainingInterrupted

__all__ = [
    "Callback",
    "DataConfig",
    "FitResult",
    "LoadedRun",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "RunResult",
    "Runtime",
    "StepOutput",
    "Task",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "evaluate_run",
    "load_run",
    "register_task",
    "resolve_config",
    "resume",
    "train",
]
