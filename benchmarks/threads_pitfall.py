"""The thread-count pitfall: divekit's default against 1 and 2 threads, on an idle machine and with a core busy.

    python benchmarks/threads_pitfall.py --data-root ../shared/data            # the table, a few minutes
    python benchmarks/threads_pitfall.py --data-root ../shared/data --smoke    # 1 round of 2 steps, seconds

For each workload, at the book's settings, it times a fixed number of
training steps (``--steps``; fewer when a setting is so slow that they would
take over 5 s) with divekit's default thread count (decided afresh before
each measurement, as a run decides it at start-up), with 1 thread and with
one thread per core (2 here):

- LeNet on Fashion-MNIST: batch 256, SGD lr 0.9, Xavier init (images/s);
- the scratch RNN (512 hidden) and ``nn.LSTM`` (256 hidden), character-level
  on The Time Machine: the first 10,000 tokens, batch 32, 35 steps,
  sequential partitioning, SGD lr 1, gradient norm clipped to 1 (tokens/s).

Two situations: the machine as it is ("idle": run it on a quiet machine), then
while a second process started by this script keeps one core busy with a
pure-Python loop. Settings are interleaved round by round (order rotated) and
each cell is the median of the rounds. It prints a Markdown table with, per
workload and situation, the default's ratio to the better of 1 and 2 threads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from char_lm_table import ROWS as LM_ROWS  # noqa: E402  (row -> label, model, options, lr, book perplexity)
from processes import one_core_busy  # noqa: E402
from rnn_speed import model_steps  # noqa: E402  (the language-model training step: SGD lr 1, clip 1)
from divekit.device import busy_cores, configure_threads, usable_cores  # noqa: E402
from divekit.engine.allocator import kept_freed_memory  # noqa: E402
from divekit.models import create_model  # noqa: E402
from divekit.models.registry import get_model_entry  # noqa: E402
from divekit.nn import apply_init  # noqa: E402


@dataclass
class Workload:
    """A fixed number of training steps: ``run(batches)`` trains on them and returns items/s."""

    label: str
    unit: str
    run: Callable[[list], float]
    batches: list
    items_per_step: int


@dataclass
class Cell:
    """The rounds of one workload in one situation: items/s per setting, and the default's picks."""

    speeds: dict[str, list[float]] = field(default_factory=dict)
    picks: list[int] = field(default_factory=list)

    def median(self, setting: str) -> float:
        return statistics.median(self.speeds[setting])

    def ratio(self, threads: list[int]) -> float:
        """The default's median over the better median of the fixed thread counts."""
        return self.median("default") / max(self.median(str(t)) for t in threads)


CAP_S = 5.0  # the longest one measurement may take


# ------------------------------------------------------------------ workloads
def lenet_workload(data_root: Path, steps: int) -> Workload:
    from divekit.data.mnist import FASHION_MNIST, load_idx_dataset

    recipe = get_model_entry("lenet").recipe
    batch = recipe["data.batch_size"]
    train = load_idx_dataset(FASHION_MNIST, data_dir=data_root / "fashion-mnist").train
    images = train.images[: batch * steps].float() / 255  # (steps * batch, 1, 28, 28)
    batches = list(zip(images.split(batch), train.labels[: batch * steps].split(batch)))
    torch.manual_seed(0)
    model = create_model("lenet")
    apply_init(model, recipe["model.init"])
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe["optim.lr"])

    def run(batches: list) -> float:
        start = time.perf_counter()
        for X, y in batches:
            loss = F.cross_entropy(model(X), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return sum(len(y) for _, y in batches) / (time.perf_counter() - start)

    return Workload(f"LeNet, Fashion-MNIST (batch {batch})", "images/s", run, batches, batch)


def char_lm_workloads(data_root: Path, steps: int) -> list[Workload]:
    from divekit.data.corpora import build_corpus, load_time_machine
    from divekit.data.sampling import SequentialBatches

    lines = load_time_machine(data_dir=data_root / "timemachine").lines()
    ids, vocab = build_corpus(lines, token="char", max_tokens=10_000)
    epoch = list(SequentialBatches(torch.tensor(ids), batch_size=32, num_steps=35))
    batches = (epoch * (steps // len(epoch) + 1))[:steps]  # the sequential order, epoch after epoch
    workloads = []
    for row in ("rnn-scratch", "lstm"):
        label, name, options, lr, _ = LM_ROWS[row]
        assert lr == 1.0, "model_steps trains with the book's lr 1"
        torch.manual_seed(0)
        model = create_model(name, vocab_size=len(vocab), **options)
        hidden = options["num_hiddens"]
        wall_rate = lambda b, model=model: model_steps(model, b)[0]  # noqa: E731  (tokens/s of the wall clock)
        workloads.append(Workload(f"{label} ({hidden} hidden)", "tokens/s", wall_rate, batches, 32 * 35))
    return workloads


# ----------------------------------------------------------------- measuring
def measure(workload: Workload, setting: str, cell: Cell) -> None:
    """One timed run of ``workload`` with ``setting`` ("default" or a thread count), after 2 untimed steps.

    A setting so slow that its steps would take over :data:`CAP_S` (2 threads
    with a core busy can be 10x slower and more) runs as many as fit instead.
    """
    if setting == "default":
        cell.picks.append(configure_threads(None))
    else:
        torch.set_num_threads(int(setting))
    warm = workload.run(workload.batches[:2])
    steps = min(len(workload.batches), max(3, int(CAP_S * warm / workload.items_per_step)))
    cell.speeds.setdefault(setting, []).append(workload.run(workload.batches[:steps]))


def situation(name: str, workloads: list[Workload], settings: list[str], rounds: int) -> list[Cell]:
    """Every workload with every setting, ``rounds`` times, the order of the settings rotated each round."""
    print(f"{name}: other work keeps {busy_cores() or 0:.2f} cores busy at the start", flush=True)
    cells = [Cell() for _ in workloads]
    for r in range(rounds):
        order = settings[r % len(settings):] + settings[: r % len(settings)]
        for workload, cell in zip(workloads, cells):
            for setting in order:
                measure(workload, setting, cell)
    return cells


# ------------------------------------------------------------------ reporting
def table(workloads: list[Workload], results: dict[str, list[Cell]], threads: list[int]) -> str:
    """The Markdown table: median speeds, the default's picks and its ratio to the better fixed count."""
    head = " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in threads)
    lines = [f"| workload | situation | default | {head} | default / better |",
             "|---|---|---|" + "---|" * len(threads) + "---|"]  # fmt: skip
    for name, cells in results.items():
        for workload, cell in zip(workloads, cells):
            picks = ", ".join(str(p) for p in sorted(set(cell.picks)))
            speeds = " | ".join(f"{cell.median(str(t)):,.0f}" for t in threads)
            lines.append(f"| {workload.label} | {name} | {cell.median('default'):,.0f} {workload.unit} "
                         f"(picked {picks}) | {speeds} | {cell.ratio(threads):.2f} |")  # fmt: skip
    return "\n".join(lines)


def summary(results: dict[str, list[Cell]], threads: list[int]) -> str:
    """Per situation, the worst ratio of the default to the better of the fixed counts."""
    lines = []
    for name, cells in results.items():
        worst = min(cell.ratio(threads) for cell in cells)
        verdict = "within 10%" if worst >= 0.9 else "NOT within 10%"
        lines.append(f"{name}: default / better of {' and '.join(map(str, threads))} threads, worst workload "
                     f"{worst:.2f} ({verdict})")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, type=Path,
                        help="folder holding fashion-mnist/ (the IDX files) and timemachine/")  # fmt: skip
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per cell; the table shows the median")
    parser.add_argument("--smoke", action="store_true", help="1 round of 2 steps, to check the script end to end")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.steps = 1, 2
    cores = usable_cores()
    threads = sorted({1, cores})
    settings = ["default", *map(str, threads)]
    workloads = [lenet_workload(args.data_root, args.steps), *char_lm_workloads(args.data_root, args.steps)]
    print(f"{cores} cores, torch {torch.__version__}; {args.steps} steps per measurement, median of {args.rounds} "
          f"rounds; settings: {', '.join(settings)}")  # fmt: skip
    started = time.perf_counter()
    with kept_freed_memory():  # as in divekit's training runs
        results = {"idle": situation("idle", workloads, settings, args.rounds)}
        with one_core_busy():
            results["one core busy"] = situation("one core busy", workloads, settings, args.rounds)
    print()
    print(table(workloads, results, threads))
    print()
    print(summary(results, threads))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
