"""``divekit train``, ``evaluate``, ``predict`` and ``export``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divekit.choices import INITS, OPTIMIZERS, PRECISIONS, SAMPLINGS, SCHEDULES, TASKS, TOKENS
from divekit.cli.common import add_model_file, split_assignment
from divekit.errors import ConfigError
from divekit.schema import parse_value


@dataclass(frozen=True)
class Flag:
    """A ``train`` option and the dotted config key it sets."""

    name: str
    key: str
    type: Any
    help: str
    choices: tuple[str, ...] | None = None


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {text!r}") from None


TRAIN_FLAGS = (
    # data
    Flag("--data", "data.name", str, "data set (see `divekit data list`; default: the model's own)"),
    Flag("--data-dir", "data.data_dir", str, "folder (or file) holding the data set's files"),
    Flag("--mirror", "data.mirror", str, "base URL replacing the official download mirrors"),
    Flag("--batch-size", "data.batch_size", int, "examples per step, all processes together"),
    Flag("--eval-batch-size", "data.eval_batch_size", int, "batch size for evaluation"),
    Flag("--val-split", "data.val_split", float,
         "hold out this fraction of the training data for validation (picks the best checkpoint; default 0: none)"),
    Flag("--split-seed", "data.split_seed", int, "seed of the validation split"),
    # task and model
    Flag("--task", "task.name", str, "the task (default: the data set's)", TASKS),
    Flag("--init", "model.init", str, "weight initialisation", INITS),
    Flag("--weights", "model.weights", str, "fine-tune from a run folder or a state_dict file (new Xavier head)"),
    Flag("--head-lr-mult", "model.head_lr_mult", float, "with --weights: the new head's learning-rate multiplier"),
    Flag("--num-hiddens", "model.options.num_hiddens", int, "hidden units (MLPs, recurrent models)"),
    Flag("--num-layers", "model.options.num_layers", int, "stacked recurrent layers (language models)"),
    # optimisation
    Flag("--optimizer", "optim.optimizer", str, "optimiser", OPTIMIZERS),
    Flag("--lr", "optim.lr", float, "learning rate"),
    Flag("--momentum", "optim.momentum", float, "SGD momentum"),
    Flag("--weight-decay", "optim.weight_decay", float, "weight decay"),
    Flag("--schedule", "optim.schedule", str, "learning-rate schedule", SCHEDULES),
    Flag("--warmup-epochs", "optim.warmup_epochs", float, "linear warm-up length"),
    Flag("--clip-grad", "optim.clip_grad", float, "clip the gradient norm to this value"),
    # loop
    Flag("--epochs", "train.epochs", int, "passes over the training data"),
    Flag("--seed", "train.seed", int, "random seed"),
    Flag("--device", "train.device", str, "auto, cpu, cuda, cuda:N or mps"),
    Flag("--precision", "train.precision", str, "arithmetic precision", PRECISIONS),
    Flag("--threads", "train.threads", int, "CPU threads (default: this process's share of idle cores)"),
    Flag("--patience", "train.patience", int, "early stopping: epochs without improvement on the validation split"),
    Flag("--monitor", "train.monitor", str, "metric that picks the best checkpoint (default: the task's, e.g. val_acc)"),
    Flag("--checkpoint-every", "train.checkpoint_every", int, "also checkpoint every N steps"),
    Flag("--skip-nonfinite", "train.skip_nonfinite", int, "tolerate N steps with NaN/Inf loss or gradients"),
    Flag("--sync-every", "train.sync_every", int, "read the device's flags and running metrics every N steps"),
    # task options
    Flag("--resize", "task.options.resize", int, "side length of the images fed to the model"),
    Flag("--augment", "task.options.augment", lambda text: [t for t in text.split(",") if t],
         "training augmentations, comma-separated: flip, crop, color"),
    Flag("--train-subset", "task.options.train_subset", int, "train on a fixed random subset of this many images"),
    Flag("--classes", "task.options.classes", _int_list,
         "keep only these class indices, comma-separated (relabelled 0, 1, ...)"),
    Flag("--num-steps", "task.options.num_steps", int, "time steps per subsequence (language models, seq2seq)"),
    Flag("--token", "task.options.token", str, "token type (language models)", TOKENS),
    Flag("--sampling", "task.options.sampling", str, "minibatch sampling (language models)", SAMPLINGS),
    Flag("--max-tokens", "task.options.max_tokens", int, "train on the first N tokens of the text (language models)"),
    Flag("--num-examples", "task.options.num_examples", int, "translation: train on the first N sentence pairs"),
    Flag("--test-split", "task.options.test_split", float,
         "image-folder without a test/ folder: fraction of each class held out for testing (default 0.2)"),
    Flag("--column", "task.options.column", str, "csv-series: the CSV column to forecast (by its header name)"),
)  # fmt: skip

SWITCHES = (
    ("--download", "data.download", "download missing data files (opt-in)"),
    ("--deterministic", "train.deterministic", "use only deterministic algorithms"),
    ("--compile", "train.compile", "compile the model with torch.compile"),
    ("--freeze-backbone", "model.freeze_backbone", "with --weights: train only the new output layer"),
    ("--bidirectional", "model.options.bidirectional", "bidirectional recurrent layers (cannot generate; notes §6.8)"),
    ("--scratch", "model.options.scratch", "divekit's from-scratch recurrent layers instead of torch.nn's"),
    ("--tensorboard", "train.tensorboard", "TensorBoard logs in the run folder's tensorboard/ (divekit[tensorboard])"),
    ("--skip-bad-images", "task.options.skip_bad_images", "image-folder: train without unreadable images (counted)"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a model",
                              description="Train a registered model by name, or your own from a Python file.")  # fmt: skip
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="a model name (see `divekit models`) or path/to/file.py:NAME, an nn.Module class or a "
                        "function returning one (its options via --option)")  # fmt: skip
    p.add_argument("--out", help="run folder (default: runs/<model>-<data>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--config", help="JSON file with config sections (model, data, task, optim, train)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config value, e.g. --set optim.gamma=0.5 (repeatable)")  # fmt: skip
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model builder option, e.g. --option dropout=0.5 (repeatable)")  # fmt: skip
    for flag in TRAIN_FLAGS:
        p.add_argument(flag.name, type=flag.type, choices=flag.choices, help=flag.help, dest=_dest(flag.key),
                       metavar=None if flag.choices else _metavar(flag))  # fmt: skip
    for name, key, help_text in SWITCHES:
        p.add_argument(name, action="store_true", default=None, help=help_text, dest=_dest(key))
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None, dest=_dest("train.channels_last"),
                   help="channels-last memory layout for images (default: on for CNNs on the CPU)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="data-parallel over N processes on this machine (launches torchrun for you); at most one "
                        "per GPU, or per CPU core on the CPU")  # fmt: skip
    p.add_argument("--oversubscribe", action="store_true",
                   help="with --nproc: allow more processes than GPUs or CPU cores")  # fmt: skip
    add_model_file(p)
    p.set_defaults(handler=run_train)

    e = subparsers.add_parser("evaluate", help="score a trained run on its test (or validation) data")
    e.add_argument("run_dir")
    e.add_argument("--split", choices=("test", "val"), default="test")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best")
    e.add_argument("--device", default="cpu")
    e.add_argument("--data-dir", help="folder holding the data set's files, if it moved")
    e.add_argument("--json", action="store_true", help="print JSON")
    add_model_file(e)
    e.set_defaults(handler=run_evaluate)

    r = subparsers.add_parser("predict", help="classify image files with a trained run")
    r.add_argument("run_dir")
    r.add_argument("--image", nargs="+", required=True, metavar="FILE", help="image files or folders of images")
    r.add_argument("--top-k", type=int, default=3)
    r.add_argument("--batch-size", type=int, default=256)
    r.add_argument("--checkpoint", choices=("best", "last"), default="best")
    r.add_argument("--device", default="cpu")
    r.add_argument("--json", action="store_true", help="print one JSON object per image")
    r.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="compute with PyTorch, or with onnxruntime on the CPU (needs divekit[onnx])")  # fmt: skip
    r.add_argument("--onnx-file", metavar="FILE.onnx",
                   help="with --backend onnxruntime: the file divekit export --format onnx wrote "
                        "(default: export the run in memory)")  # fmt: skip
    add_model_file(r)
    r.set_defaults(handler=run_predict)

    x = subparsers.add_parser("export", help="export a run's model (safetensors, a plain state_dict, or ONNX)")
    x.add_argument("run_dir")
    x.add_argument("--out", required=True,
                   help="output file, e.g. model.safetensors; for a seq2seq run in ONNX, NAME.onnx gives "
                        "NAME.encoder.onnx and NAME.decoder.onnx")  # fmt: skip
    x.add_argument("--format", choices=("safetensors", "pt", "onnx"), default="safetensors",
                   help="onnx: checked by onnxruntime against PyTorch before it is written (needs divekit[onnx])")
    x.add_argument("--checkpoint", choices=("best", "last"), default="best")
    add_model_file(x)
    x.set_defaults(handler=run_export)


def _metavar(flag: Flag) -> str:
    """``N`` for counts, ``X`` for real numbers, else the flag's own name (``--data-dir DATA_DIR``)."""
    if flag.type is int:
        return "N"
    if flag.type is float:
        return "X"
    return flag.name.lstrip("-").replace("-", "_").upper()


def _dest(key: str) -> str:
    return "cfg__" + key.replace(".", "__")


def explicit_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted config keys the user set on the command line, and their values."""
    overrides = {name[5:].replace("__", "."): value for name, value in vars(args).items()
                 if name.startswith("cfg__") and value is not None}  # fmt: skip
    if args.no_progress:
        overrides["train.progress"] = False
    for item in args.set:
        key, value = split_assignment(item, "--set")
        overrides[key] = parse_value(value)
    for item in args.option:
        key, value = split_assignment(item, "--option")
        overrides[f"model.options.{key}"] = parse_value(value)
    return overrides


def run_train(args: argparse.Namespace) -> int:
    from divekit.runs import read_run_config, resolve_config, resume, train

    if args.nproc is not None:
        return launch_torchrun(args.nproc, device=getattr(args, _dest("train.device")),
                               oversubscribe=args.oversubscribe)  # fmt: skip
    overrides = explicit_overrides(args)
    if args.resume:
        if args.out is None:
            raise ConfigError("--resume needs --out DIR, the run folder to continue")
        saved = read_run_config(args.out)
        if args.model and args.model not in (saved.model.name, f"{saved.model.file}:{saved.model.name}"):
            raise ConfigError(f"{args.out} holds a {saved.model.name!r} run, not {args.model!r}")
        result = resume(args.out, changes=overrides, model_file=args.model_file)
    else:
        if not args.model:
            raise ConfigError("name the model to train, e.g. `divekit train lenet` (see `divekit models`), "
                              "or your own, `divekit train my_model.py:Net`")  # fmt: skip
        data, task = overrides.pop("data.name", None), overrides.pop("task.name", None)
        config = resolve_config(args.model, data=data, task=task, overrides=overrides, config_file=args.config)
        result = train(config, out_dir=args.out)
    if os.environ.get("RANK", "0") == "0":
        print_result(result)
    return 0


def launch_torchrun(nproc: int, *, device: str | None = None, oversubscribe: bool = False) -> int:
    """Re-run this very command under ``torchrun --standalone --nproc_per_node N`` (PyTorch's launcher).

    Each process holds a whole copy of the model and the data (~800 MB with
    PyTorch itself), so more processes than GPUs (or, on the CPU, than the
    cores this process may use) are refused unless ``oversubscribe``.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    if "RANK" in os.environ:
        raise ConfigError("--nproc cannot be used inside torchrun; torchrun already started the processes")
    limit, what = _process_limit(device or "auto")
    if nproc > limit and not oversubscribe:
        raise ConfigError(f"--nproc {nproc} is more than the {limit} {what} here; each process holds a copy of the "
                          f"model and the data: use --nproc {limit} or fewer, or add --oversubscribe if you mean it")
    rest: list[str] = []
    skip = False
    for item in sys.argv[1:]:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc=") and item != "--oversubscribe":
            rest.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "divekit", *rest]  # fmt: skip
    os.execv(sys.executable, command)
    return 0  # not reached


def _process_limit(device: str) -> tuple[int, str]:
    """How many processes the device allows: one per GPU, else one per CPU core this process may use."""
    import torch

    from divekit.device import resolve_device

    if resolve_device(device).type == "cuda":
        return torch.cuda.device_count(), "GPU(s)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores, "CPU core(s) this process may use"


def print_result(result: Any) -> None:
    """The final numbers of a run, on stdout."""
    from divekit.engine.progress import format_metrics

    if not result.history:
        print("no epoch was trained")
        return
    final, cfg = result.final, result.config
    unit = next((k.split("_")[1] for k in final if k.startswith("train_") and k.endswith("_per_s")), "examples")
    total = sum(r["epoch_time_s"] for r in result.history)
    print(f"{cfg.model.name} on {cfg.data.name}: {final['epoch']} epochs, {total:.1f}s ({result.stop_reason})")
    print(f"  last epoch: {format_metrics(final)}")
    print(f"  {final[f'train_{unit}_per_s']:,.0f} {unit}/s in training steps, "
          f"{final[f'epoch_{unit}_per_s']:,.0f} {unit}/s over whole epochs")  # fmt: skip
    if result.best is not None:
        print(f"  best epoch on the validation split ({result.monitor}): {result.best['epoch']}: "
              f"{format_metrics(result.best)} (checkpoints/best.pt)")  # fmt: skip
    else:
        print("  no validation split, so no best epoch is chosen: the last epoch's numbers are the result "
              "(add --val-split 0.1 to choose one)")  # fmt: skip
    if result.out_dir is not None:
        print(f"  run folder: {result.out_dir}")


def run_evaluate(args: argparse.Namespace) -> int:
    from divekit.runs import evaluate_run

    metrics = evaluate_run(args.run_dir, which=args.checkpoint, device=args.device, data_dir=args.data_dir,
                           split=args.split, model_file=args.model_file)  # fmt: skip
    if not metrics:
        raise ConfigError(f"{args.run_dir} has no {args.split} split to score (e.g. a language model trained "
                          "without --val-split holds out no text)")  # fmt: skip
    if args.json:
        print(json.dumps(metrics))
    else:
        print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from divekit.inference.predict import expand_image_paths, predict_images

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {args.top_k}")
    if args.onnx_file is not None and args.backend != "onnxruntime":
        raise ConfigError("--onnx-file is read by --backend onnxruntime only; add --backend onnxruntime")
    paths = expand_image_paths([Path(p) for p in args.image])
    for pred in predict_images(args.run_dir, paths, top_k=args.top_k, batch_size=args.batch_size,
                               which=args.checkpoint, device=args.device, model_file=args.model_file,
                               backend=args.backend, onnx_file=args.onnx_file):  # fmt: skip
        if args.json:
            print(json.dumps({"image": str(pred.path), "top": [[c, p] for c, p in pred.top]}))
        else:
            print(f"{pred.path}: " + ", ".join(f"{c} {p:.3f}" for c, p in pred.top))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from divekit.runs.export import export_weights

    if args.format == "onnx":
        from divekit.runs.onnx import export_onnx

        for exported in export_onnx(args.run_dir, args.out, which=args.checkpoint, model_file=args.model_file):
            print(f"{exported.path}  ({exported.role}; onnxruntime vs PyTorch max abs diff {exported.max_abs_diff:.2e})")
        return 0
    print(export_weights(args.run_dir, args.out, fmt=args.format, which=args.checkpoint, model_file=args.model_file))
    return 0
