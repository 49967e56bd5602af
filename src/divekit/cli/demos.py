"""``divekit kernel-regression``: the notes' attention-pooling demonstration (§6.11.2-6.11.3)."""

from __future__ import annotations

import argparse

from divekit.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    k = subparsers.add_parser("kernel-regression", help="Nadaraya-Watson attention pooling on the notes' toy data")
    k.add_argument("--out", default="kernel-regression", help="folder for the PNGs")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--epochs", type=int, default=5, help="SGD epochs fitting the kernel width w")
    k.add_argument("--lr", type=float, default=0.5)
    k.set_defaults(handler=run_kernel_regression)


def run_kernel_regression(args: argparse.Namespace) -> int:
    from divekit.demos.kernel_regression import run_kernel_regression as run

    if args.epochs < 0 or not args.lr > 0:
        raise ConfigError("--epochs must be >= 0 and --lr > 0")
    result = run(args.out, seed=args.seed, epochs=args.epochs, lr=args.lr)
    print(f"non-parametric (w = 1): test MSE {result.mse_nonparametric:.4f}")
    print(f"parametric (learned w = {result.w:.3f}): test MSE {result.mse_parametric:.4f}")
    for path in result.files:
        print(path)
    return 0
