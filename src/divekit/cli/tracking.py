"""``divekit runs`` (the run folders at a glance) and ``divekit compare`` (runs side by side)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser("runs", help="list run folders: model, data, epochs, status, a metric",
                              description="One line per run folder in DIR: model, data, epochs done/asked, and "
                                          "status (completed, interrupted, failed, running).")  # fmt: skip
    r.add_argument("dir", nargs="?", default="runs", metavar="DIR", help="folder holding run folders (default: runs)")
    r.add_argument("--sort", metavar="METRIC",
                   help="sort by this metric of the last epoch (e.g. val_acc), or of the best one (best_val_acc); "
                        "best first")  # fmt: skip
    r.add_argument("--json", action="store_true", help="print one JSON object per run")
    r.set_defaults(handler=run_runs)

    c = subparsers.add_parser("compare", help="compare runs: differing settings, metrics, overlaid curves",
                              description="The config keys that differ, the final and best metrics side by side, "
                                          "and one PNG per metric overlaying every run's curves.")  # fmt: skip
    c.add_argument("runs", nargs="+", metavar="RUN", help="two or more run folders")
    c.add_argument("--plots", default="compare", metavar="DIR",
                   help="folder for the overlay PNGs, one per metric (default: compare)")  # fmt: skip
    c.add_argument("--no-plots", action="store_true", help="print the tables only")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    c.set_defaults(handler=run_compare)


def run_runs(args: argparse.Namespace) -> int:
    from divekit.runs.listing import format_runs, list_runs

    runs = list_runs(args.dir, sort=args.sort)
    if args.json:
        for r in runs:
            print(json.dumps({"run": str(r.folder), "model": r.model, "data": r.data, "epochs_done": r.epochs_done,
                              "epochs_asked": r.epochs_asked, "status": r.status, "final": r.final,
                              "best": r.best, "monitor": r.monitor}))  # fmt: skip
        return 0
    if not runs:
        print(f"no run folders in {args.dir}")
        return 0
    print(format_runs(runs, metric=args.sort, root=Path(args.dir)))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from divekit.runs.compare import compare_runs

    comparison = compare_runs(args.runs)
    paths = [] if args.no_plots else comparison.plot(args.plots)
    if args.json:
        print(json.dumps({"runs": [str(r.folder) for r in comparison.runs], "names": comparison.names,
                          "differences": comparison.differences(), **comparison.metrics(),
                          "plots": [str(p) for p in paths]}))  # fmt: skip
        return 0
    print(comparison.format())
    if paths:
        print(f"\ncurves: {', '.join(str(p) for p in paths)}")
    return 0
