"""The learning-rate finder's suggestion with one-cycle against the book's constant lr 0.9 (LeNet, Fashion-MNIST).

For each seed: sweep the lr (``divekit lr-find``'s code, the sweep below), then
train the book's LeNet recipe (sigmoid, average pooling, SGD, batch 256,
Xavier init) with the constant lr 0.9 for 10 epochs, recording the test
accuracy after each epoch; then with ``optim.schedule=onecycle`` at the
suggested lr for 2, 3, 4... epochs (a one-cycle run's length is part of its
schedule, so each length is its own run) until one ends at or above the
target. The target is the book's LeNet test accuracy (0.779, notes §2.3 / d2l).
The same seed gives both schedules the same initial weights and batch order.

    flock /work/cpu.lock python benchmarks/lr_find_onecycle.py --data-dir ../shared/data/fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import time

BOOK_TEST_ACC = 0.779


def config(data_dir: str, seed: int, threads: int, **overrides):
    from divekit.runs import resolve_config

    base = {"data.data_dir": data_dir, "train.seed": seed, "train.threads": threads, "train.progress": False}
    return resolve_config("lenet", data="fashion-mnist", overrides={**base, **overrides})


def curve(cfg) -> tuple[list[float], float]:
    """Test accuracy after each epoch, and the wall time."""
    from divekit.runs import train

    start = time.perf_counter()
    result = train(cfg, write=False, log=lambda message: None)
    return [r["test_acc"] for r in result.history], time.perf_counter() - start


def one_seed(args: argparse.Namespace, seed: int) -> dict:
    from divekit.runs.lr_find import lr_find_config

    start = time.perf_counter()
    sweep = lr_find_config(config(args.data_dir, seed, args.threads), start_lr=args.start_lr, end_lr=args.end_lr,
                           num_steps=args.steps)  # fmt: skip
    row = {"seed": seed, "suggestion": sweep.suggestion, "rule": sweep.rule, "candidates": sweep.candidates,
           "sweep_s": time.perf_counter() - start, "sweep_steps": len(sweep.lrs)}  # fmt: skip
    constant, row["constant_s"] = curve(config(args.data_dir, seed, args.threads, **{"train.epochs": 10}))
    row["constant"] = constant
    row["constant_epochs"] = next((i + 1 for i, acc in enumerate(constant) if acc >= args.target), None)
    print(f"seed {seed}: constant lr 0.9, test acc per epoch {' '.join(f'{a:.4f}' for a in constant)}", flush=True)
    row["onecycle"] = {}
    for epochs in range(2, 11):
        accs, seconds = curve(config(args.data_dir, seed, args.threads, **{
            "train.epochs": epochs, "optim.lr": sweep.suggestion, "optim.schedule": "onecycle"}))  # fmt: skip
        row["onecycle"][epochs] = {"final": accs[-1], "curve": accs, "seconds": seconds}
        print(f"seed {seed}: one-cycle lr {sweep.suggestion:.3g}, {epochs} epochs: test acc {accs[-1]:.4f}", flush=True)
        if accs[-1] >= args.target:
            row["onecycle_epochs"] = epochs
            break
    return row


def report(rows: list[dict], target: float) -> None:
    print(f"\ntarget: test accuracy >= {target} (the book's LeNet)\n")
    print("| seed | suggested lr (rule) | constant 0.9: epochs to target | test acc after each epoch | "
          "one-cycle at the suggestion: epochs to target | its final test acc |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        n = r.get("onecycle_epochs")
        final = r["onecycle"][n]["final"] if n else max(v["final"] for v in r["onecycle"].values())
        print(f"| {r['seed']} | {r['suggestion']:.3g} ({r['rule']}) | {r['constant_epochs'] or '> 10'} | "
              f"{' '.join(f'{a:.3f}' for a in r['constant'])} | {n or '> 10'} | {final:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--start-lr", type=float, default=1e-3)
    parser.add_argument("--end-lr", type=float, default=100.0)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--target", type=float, default=BOOK_TEST_ACC)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        rows.append(one_seed(args, seed))
        report(rows, args.target)  # as each seed finishes
    report(rows, args.target)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
