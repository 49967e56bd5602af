"""Start-up time of divekit commands, for one or more source trees side by side (e.g. before and after a change).

Commands: ``divekit --help``, ``divekit models``, ``divekit env`` (launch to
exit), and ``divekit train lenet --data fashion-mnist`` from launch to its
first training step. The last one runs with a probe: a bootstrap that wraps
``Trainer._step`` so that the first call records the time and the heavy
modules loaded, then ends the process; it needs no change in the code it
measures, so any commit can be timed the same way.

Contenders are interleaved (the order turns every round) and each cell is
the median over rounds, of wall time and of CPU time (the child's own,
which the load of other processes disturbs less); the load average is
printed beside. To time the commit a branch started from::

    git worktree add --detach /tmp/divekit-before <commit>
    python benchmarks/startup.py --data-dir ../shared/data/fashion-mnist \\
        --tree before=/tmp/divekit-before/src --tree after=src --rounds 5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import load_note, median, run_timed, with_pythonpath  # noqa: E402

HEAVY = ("torch", "numpy", "torchvision", "torchvision.models", "torch._dynamo", "matplotlib", "PIL", "sacrebleu",
         "tensorboard", "torch.utils.tensorboard", "onnx", "onnxruntime", "fastapi", "scipy", "sympy")  # fmt: skip

# Runs `python -m divekit ARGS` with a probe: the modules of HEAVY loaded at exit, or, for a training run, the
# time (epoch clock and CPU) of the first training step, at which the process ends.
BOOTSTRAP = r"""
import atexit, json, os, sys, time, runpy
probe = os.environ["STARTUP_PROBE"]
heavy = json.loads(os.environ["STARTUP_HEAVY"])
def record(**fields):
    loaded = [m for m in heavy if m in sys.modules]
    with open(probe, "w") as f:
        json.dump({"loaded": loaded, **fields}, f)
class FirstStep:
    def find_spec(self, name, path=None, target=None):
        if name not in ("divekit.engine.trainer", "divekit.train.trainer"):  # today, and before the re-cut
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            def first_step(trainer, batch):
                record(first_step=time.time(), cpu=time.process_time())
                os._exit(0)
            module.Trainer._step = first_step
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, FirstStep())
atexit.register(lambda: os.path.exists(probe) or record(cpu=time.process_time()))
sys.argv = ["divekit", *sys.argv[1:]]
runpy.run_module("divekit", run_name="__main__", alter_sys=True)
"""


def commands(data_dir: str) -> dict[str, list[str]]:
    train = ["train", "lenet", "--data", "fashion-mnist", "--data-dir", data_dir, "--epochs", "1", "--no-progress"]
    return {"--help": ["--help"], "models": ["models"], "env": ["env"], "train lenet (to first step)": train}


def measure(src: str, args: list[str], scratch: Path) -> dict:
    """One run of ``divekit ARGS`` from source tree ``src``: wall, CPU, and what the probe recorded."""
    probe = scratch / "probe.json"
    probe.unlink(missing_ok=True)
    out = scratch / f"run-{time.monotonic_ns()}"
    argv = [sys.executable, "-c", BOOTSTRAP, *args, *(["--out", str(out)] if args[0] == "train" else [])]
    env = with_pythonpath(src, {"STARTUP_PROBE": str(probe), "STARTUP_HEAVY": json.dumps(HEAVY)})
    launched = time.time()
    timed = run_timed(argv, env=env, cwd=str(scratch), timeout=600)
    if timed.returncode != 0 or not probe.exists():
        raise SystemExit(f"`divekit {' '.join(args)}` from {src} failed ({timed.returncode}): {timed.stderr[-2000:]}")
    seen = json.loads(probe.read_text())
    wall = seen["first_step"] - launched if "first_step" in seen else timed.wall_s
    cpu = seen["cpu"] if "first_step" in seen else timed.cpu_s  # a process ended by os._exit: its own clock
    return {"wall": wall, "cpu": cpu, "load": timed.load, "loaded": seen["loaded"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--tree", action="append", metavar="NAME=SRC",
                        help="a divekit source tree (the folder holding the divekit package); repeatable; "
                             "default: this checkout's src")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="command labels to time (default: all)")
    parser.add_argument("--json", help="also write the cells to this file")
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree or [f"now={Path(__file__).resolve().parents[1] / 'src'}"])
    data_dir = str(Path(args.data_dir).resolve())
    print(load_note(), flush=True)
    cells: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="divekit-startup-") as tmp:
        table = {k: v for k, v in commands(data_dir).items() if not args.only or k in args.only}
        for round_ in range(args.rounds):
            names = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for label, argv in table.items():
                for name in names:
                    cell = measure(str(Path(trees[name]).resolve()), argv, Path(tmp))
                    cells.setdefault((label, name), []).append(cell)
                    print(f"round {round_ + 1} {label:<28} {name:<8} wall {cell['wall']:6.2f}s  cpu {cell['cpu']:6.2f}s"
                          f"  load {cell['load']:4.1f}  heavy: {', '.join(cell['loaded']) or '-'}", flush=True)  # fmt: skip
    print(f"\nmedians over {args.rounds} rounds; {load_note()}")
    print(f"| command | {' | '.join(f'{n} wall (cpu)' for n in trees)} |\n|---|{'---|' * len(trees)}")
    for label in table:
        row = [f"{median([c['wall'] for c in cells[label, n]]):.2f} s ({median([c['cpu'] for c in cells[label, n]]):.2f} s)"
               for n in trees]  # fmt: skip
        print(f"| `divekit {label}` | {' | '.join(row)} |")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{label} | {name}": v for (label, name), v in cells.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
