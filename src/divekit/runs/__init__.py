"""Runs: train a model into a run folder (from a config, or any model on any batches), resume, load, evaluate."""

from divekit.runs.build import resolve_config
from divekit.runs.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TaskConfig, TrainConfig
from divekit.runs.fit import evaluate, fit, predict
from divekit.runs.folder import read_run_config
from divekit.runs.load import LoadedRun, evaluate_run, load_run
from divekit.runs.train import resume, train
from divekit.engine.result import RunResult

__all__ = [
    "DataConfig", "LoadedRun", "ModelConfig", "OptimConfig", "RunConfig", "RunResult", "TaskConfig", "TrainConfig",
    "evaluate", "evaluate_run", "fit", "load_run", "predict", "read_run_config", "resolve_config", "resume", "train",
]
