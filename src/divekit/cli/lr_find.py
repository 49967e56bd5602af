"""``divekit lr-find``: sweep the learning rate for a model on a data set, plot loss against lr, suggest one."""

from __future__ import annotations

import argparse
import json

from divekit.cli.common import add_model_file
from divekit.cli.train import SWITCHES, TRAIN_FLAGS, _dest, _metavar, explicit_overrides
from divekit.choices import LR_RULES
from divekit.errors import ConfigError

# The train command's options that change what a sweep sees (not the loop's length, checkpoints or monitoring).
SECTIONS = ("data.", "task.", "model.", "optim.")
LOOP_KEYS = ("train.seed", "train.device", "train.threads", "train.precision")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lr-find", help="sweep the learning rate and suggest one (plot of loss against lr)",
                              description="A short training run whose learning rate grows exponentially from "
                                          "--start-lr to --end-lr; prints a suggested lr and the rule that picked "
                                          "it, and plots loss against lr. The model is not saved.")  # fmt: skip
    p.add_argument("model", metavar="MODEL", help="a model name (see `divekit models`) or path/to/file.py:NAME")
    p.add_argument("--out", help="PNG of loss against lr (default: lr-find-<model>.png)")
    p.add_argument("--start-lr", type=float, default=1e-6, metavar="X", help="first learning rate")
    p.add_argument("--end-lr", type=float, default=10.0, metavar="X", help="last learning rate")
    p.add_argument("--steps", type=int, default=100, metavar="N", help="steps of the sweep (stops when the loss diverges)")
    p.add_argument("--rule", choices=LR_RULES, default=LR_RULES[0],
                   help="edge/10: a tenth of the largest lr whose loss is within 5%% of the lowest (the default); "
                        "min/10: a tenth of the lr of the lowest loss; steepest: where the loss falls fastest")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="set any config value")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="model builder option")
    p.add_argument("--json", action="store_true", help="print the sweep as JSON")
    for flag in TRAIN_FLAGS:
        if flag.key.startswith(SECTIONS) or flag.key in LOOP_KEYS:
            p.add_argument(flag.name, type=flag.type, choices=flag.choices, help=flag.help, dest=_dest(flag.key),
                           metavar=None if flag.choices else _metavar(flag))  # fmt: skip
    for name, key, help_text in SWITCHES:
        if key.startswith(SECTIONS):
            p.add_argument(name, action="store_true", default=None, help=help_text, dest=_dest(key))
    add_model_file(p)
    p.set_defaults(handler=run_lr_find, no_progress=False)


def run_lr_find(args: argparse.Namespace) -> int:
    from pathlib import Path

    from divekit.plot import _save, lr_finder_figure
    from divekit.runs import resolve_config
    from divekit.runs.lr_find import lr_find_config

    if args.steps < 5:
        raise ConfigError(f"--steps must be at least 5, got {args.steps}")
    overrides = explicit_overrides(args)
    data, task = overrides.pop("data.name", None), overrides.pop("task.name", None)
    config = resolve_config(args.model, data=data, task=task, overrides=overrides)
    result = lr_find_config(config, start_lr=args.start_lr, end_lr=args.end_lr, num_steps=args.steps, rule=args.rule,
                            model_file=args.model_file)  # fmt: skip
    out = Path(args.out or f"lr-find-{Path(config.model.name).stem}.png")
    _save(lr_finder_figure(result), out)
    if args.json:
        print(json.dumps({"suggestion": result.suggestion, "rule": result.rule, "candidates": result.candidates,
                          "stop_reason": result.stop_reason, "lrs": result.lrs, "losses": result.losses}))  # fmt: skip
        return 0
    print(f"{config.model.name} on {config.data.name}: {len(result.lrs)} steps from lr {result.lrs[0]:.3g} to "
          f"{result.lrs[-1]:.3g} ({result.stop_reason})")  # fmt: skip
    if result.suggestion is None:
        print(f"no suggestion: {result.rule}; widen --start-lr/--end-lr or add --steps")
    else:
        print(f"suggested lr {result.suggestion:.3g}: {result.rule}")
        others = ", ".join(f"{rule} {lr:.3g}" for rule, lr in result.candidates.items() if rule != args.rule)
        print(f"  other rules: {others}; try: --lr {result.suggestion:.3g} --schedule onecycle")
    print(out)
    return 0
