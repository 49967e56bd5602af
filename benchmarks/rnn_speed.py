"""Training tokens/s of divekit's recurrent language models against the textbook loops (notes §6.4-§6.6).

Two comparisons, each run in this process, interleaved round by round with
the same thread count and the same batches (the book's character-level
settings: vocabulary 28, batch 32, 35 steps, one-hot input, SGD lr 1,
gradient norm clipped to 1, the hidden state carried and detached between
batches; hidden size 512 for the RNN, 256 for the GRU and the LSTM):

1. ``fast``: for the RNN, the GRU and the LSTM, the textbook from-scratch loop
   (every product, the one-hot input's and the output layer's included, inside
   the per-time-step Python loop) against divekit's scratch model
   (``{rnn,gru,lstm}-lm --scratch``, the readable layers) and against its fast
   path (``fast=True``: :mod:`divekit.nn.recurrent_fast`), the latter also with
   oneDNN switched off (``torch.addmm`` only) to show what each part brings,
   and (``--compile-step``) the readable model with ``torch.compile`` of its cell;
2. ``trainer``: divekit's concise LSTM (``lstm-lm`` trained by divekit's
   ``Trainer`` with the language-model task) against a bare ``nn.LSTM`` +
   ``nn.Linear`` training loop.

It prints each round's tokens/s and, per model, the median tokens/s and the
median of the per-round ratios against the textbook loop (or the bare loop).
Rounds alternate the order of the contenders, so none always runs first.
Beside the wall clock it counts tokens per second of this thread's CPU time
(``time.thread_time``): with ``--threads 1`` that is the work itself, which
other processes on a shared machine slow down much less than the wall clock
(they still share the caches). The trainer comparison has wall clock only.

    python benchmarks/rnn_speed.py --data-dir ../shared/data/timemachine --threads 1 --rounds 9 [--only fast]
    python benchmarks/rnn_speed.py ... --compile-step  # also torch.compile of the readable cell, compile time shown
    python benchmarks/rnn_speed.py --dry-run       # tiny sizes, end to end, seconds
"""

from __future__ import annotations

import dataclasses

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from divekit.data.corpora import build_corpus, load_time_machine, pydoc_lines
from divekit.data.sampling import SequentialBatches
from divekit.device import configure_threads
from divekit.models import create_model
from divekit.nn import recurrent_fast

BOOK_HIDDENS = {"rnn": 512, "gru": 256, "lstm": 256}  # §6.4.3 (RNN), §6.5 (GRU), §6.6 (LSTM)


# ------------------------------------------------------------ the textbook loops
def _normal(*shape: int) -> torch.Tensor:
    return (torch.randn(shape) * 0.01).requires_grad_()


def _gate(vocab_size: int, num_hiddens: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(W_x, W_h, b)`` of one gate, as the book initialises them."""
    return _normal(vocab_size, num_hiddens), _normal(num_hiddens, num_hiddens), torch.zeros(num_hiddens,
                                                                                            requires_grad=True)


class TextbookRNN:
    """The from-scratch RNN as the book writes it (§6.4): every product inside the time loop."""

    num_gates, state_size = 1, 1

    def __init__(self, vocab_size: int, num_hiddens: int) -> None:
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.gates = [_gate(vocab_size, num_hiddens) for _ in range(self.num_gates)]
        self.W_hq, self.b_q = _normal(num_hiddens, vocab_size), torch.zeros(vocab_size, requires_grad=True)
        self.params = [p for gate in self.gates for p in gate] + [self.W_hq, self.b_q]

    def begin_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        return tuple(torch.zeros(batch_size, self.num_hiddens) for _ in range(self.state_size))

    def cell(self, X_t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        ((W_xh, W_hh, b_h),), (H,) = self.gates, state
        return (torch.tanh(X_t @ W_xh + H @ W_hh + b_h),)

    def __call__(self, X: torch.Tensor, state: tuple[torch.Tensor, ...]):
        outputs = []
        for X_t in F.one_hot(X.T, self.vocab_size).float():  # (N, V) per step
            state = self.cell(X_t, state)
            outputs.append(state[0] @ self.W_hq + self.b_q)
        return torch.cat(outputs), state  # (T * N, V), time-major


class TextbookGRU(TextbookRNN):
    """The book's from-scratch GRU (§6.5): update gate Z, reset gate R, candidate H~."""

    num_gates = 3

    def cell(self, X_t, state):
        ((W_xz, W_hz, b_z), (W_xr, W_hr, b_r), (W_xh, W_hh, b_h)), (H,) = self.gates, state
        Z = torch.sigmoid(X_t @ W_xz + H @ W_hz + b_z)
        R = torch.sigmoid(X_t @ W_xr + H @ W_hr + b_r)
        H_tilde = torch.tanh(X_t @ W_xh + (R * H) @ W_hh + b_h)
        return (Z * H + (1 - Z) * H_tilde,)


class TextbookLSTM(TextbookRNN):
    """The book's from-scratch LSTM (§6.6): input, forget and output gates, candidate memory C~."""

    num_gates, state_size = 4, 2

    def cell(self, X_t, state):
        ((W_xi, W_hi, b_i), (W_xf, W_hf, b_f), (W_xo, W_ho, b_o), (W_xc, W_hc, b_c)), (H, C) = self.gates, state
        I = torch.sigmoid(X_t @ W_xi + H @ W_hi + b_i)
        F_ = torch.sigmoid(X_t @ W_xf + H @ W_hf + b_f)
        O = torch.sigmoid(X_t @ W_xo + H @ W_ho + b_o)
        C_tilde = torch.tanh(X_t @ W_xc + H @ W_hc + b_c)
        C = F_ * C + I * C_tilde
        return O * torch.tanh(C), C


TEXTBOOK = {"rnn": TextbookRNN, "gru": TextbookGRU, "lstm": TextbookLSTM}


Rate = tuple[float, float]  # tokens per second of wall clock, and of this thread's CPU time


def rates(batches: list, wall: float, cpu: float) -> Rate:
    """Tokens/s of ``batches`` trained since the clocks read ``wall`` and ``cpu``."""
    tokens = sum(Y.numel() for _, Y in batches)
    return tokens / (time.perf_counter() - wall), tokens / (time.thread_time() - cpu)


def textbook_steps(model: TextbookRNN, batches: list) -> Rate:
    """Train on ``batches`` as the book's ``train_epoch_ch8`` does."""
    state = model.begin_state(batches[0][0].shape[0])
    wall, cpu = time.perf_counter(), time.thread_time()
    for X, Y in batches:
        logits, state = model(X, tuple(s.detach() for s in state))
        loss = F.cross_entropy(logits, Y.T.reshape(-1))
        for p in model.params:
            p.grad = None
        loss.backward()
        norm = torch.sqrt(sum((p.grad**2).sum() for p in model.params))
        with torch.no_grad():
            scale = min(1.0, 1.0 / float(norm))
            for p in model.params:
                p -= 1.0 * scale * p.grad
    return rates(batches, wall, cpu)


# ------------------------------------------------------------------ bare loops
def model_steps(model: nn.Module, batches: list) -> Rate:
    """A minimal loop around a divekit language model (what the trainer's step does)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    state = None
    wall, cpu = time.perf_counter(), time.thread_time()
    for X, Y in batches:
        logits, state = model(X, state)
        state = state.detach() if isinstance(state, torch.Tensor) else tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return rates(batches, wall, cpu)


class BareLSTM(nn.Module):
    def __init__(self, vocab_size: int, num_hiddens: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(vocab_size, num_hiddens)
        self.out = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X, state=None):
        Y, state = self.lstm(F.one_hot(X.T, self.vocab_size).float(), state)
        return self.out(Y).transpose(0, 1), state


def divekit_lstm_epoch(trainer) -> Rate:
    """One more epoch of divekit's Trainer; its training-step tokens/s (wall clock only)."""
    trainer.train_config.epochs += 1
    trainer.fit()
    return trainer.history[-1]["train_tokens_per_s"], math.nan


def make_trainer(text_lines: list[str], *, max_tokens: int, num_hiddens: int, batch_size: int, num_steps: int):
    from divekit.data.corpora import TextCorpus
    from divekit.engine.trainer import Trainer
    from divekit.runs import resolve_config
    from divekit.runs.build import build_model, build_objective, build_source

    config = resolve_config("lstm-lm", data="pydoc", overrides={
        "task.options.max_tokens": max_tokens, "model.options.num_hiddens": num_hiddens, "data.batch_size": batch_size,
        "task.options.num_steps": num_steps, "train.progress": False, "train.device": "cpu"})  # fmt: skip
    source = build_source(config, TextCorpus("bench", text_lines, "benchmark"))
    model = build_model(config, source.model_options())
    train = dataclasses.replace(config.train, epochs=1)
    trainer = Trainer(model, build_objective(source, config), source.train_batches(seed=config.train.seed),
                      train=train, optim=config.optim, transfer=source.transfer, log=lambda message: None)  # fmt: skip
    trainer.train_config.epochs = 0  # divekit_lstm_epoch raises it one epoch at a time
    return trainer


# --------------------------------------------------------------------- driver
Contender = Callable[[list], Rate]  # trains on the batches


def without_onednn(run: Contender) -> Contender:
    """``run`` with the fast path's matrix products on ``torch.addmm`` only."""

    def measure(batches: list) -> Rate:
        recurrent_fast.USE_ONEDNN = False
        try:
            return run(batches)
        finally:
            recurrent_fast.USE_ONEDNN = True

    return measure


def fast_contenders(kind: str, vocab_size: int, num_hiddens: int, *, compile_step: bool) -> dict[str, Contender]:
    """The textbook loop first (the baseline), then divekit's readable scratch model and its fast path.

    ``compile_step`` adds the readable model with its per-step cell compiled by ``torch.compile``.
    """
    torch.manual_seed(0)
    textbook = TEXTBOOK[kind](vocab_size, num_hiddens)
    models = [create_model(f"{kind}-lm", vocab_size=vocab_size, num_hiddens=num_hiddens, scratch=True, fast=fast)
              for fast in (False, True, True, False)]  # fmt: skip
    contenders = {
        "textbook loop": lambda batches: textbook_steps(textbook, batches),
        "readable scratch": lambda batches: model_steps(models[0], batches),
        "fast path": lambda batches: model_steps(models[1], batches),
        "fast path, no oneDNN": without_onednn(lambda batches: model_steps(models[2], batches)),
    }
    if compile_step:
        models[3].rnn._step = torch.compile(models[3].rnn._step)
        contenders["readable, compiled step"] = lambda batches: model_steps(models[3], batches)
    return contenders


def trainer_contenders(lines: list[str], vocab_size: int, num_hiddens: int, max_tokens: int) -> dict[str, Contender]:
    """The bare nn.LSTM loop first (the baseline), then divekit's Trainer, one epoch per measurement."""
    trainer = make_trainer(lines, max_tokens=max_tokens, num_hiddens=num_hiddens, batch_size=32, num_steps=35)
    bare = BareLSTM(vocab_size, num_hiddens)
    return {"bare nn.LSTM loop": lambda batches: model_steps(bare, batches),
            "divekit LSTM (Trainer)": lambda batches: divekit_lstm_epoch(trainer)}  # fmt: skip


def race(groups: dict[str, dict[str, Contender]], batches: list, rounds: int) -> dict[str, dict[str, list[Rate]]]:
    """The rates of every contender, round by round; within a group the order flips every round."""
    for group, contenders in groups.items():
        for name, run in contenders.items():
            start = time.perf_counter()
            run(batches[:2])  # warm-up (and compilation, where there is one)
            if time.perf_counter() - start > 2:
                print(f"warm-up of {group} {name}: {time.perf_counter() - start:.1f} s", flush=True)
    results = {group: {name: [] for name in contenders} for group, contenders in groups.items()}
    for r in range(rounds):
        for group, contenders in groups.items():
            for name, run in list(contenders.items())[:: -1 if r % 2 else 1]:
                results[group][name].append(run(batches))
            print(f"round {r + 1} {group}: " + ", ".join(f"{n} {v[-1][0]:,.0f}" for n, v in results[group].items())
                  + " tokens/s", flush=True)  # fmt: skip
    return results


def report(results: dict[str, dict[str, list[Rate]]]) -> None:
    """Per contender and clock: median tokens/s and the median of the per-round ratios to the group's first."""
    print(f"\n{'model':<12} {'contender':<24} {'tokens/s':>9} {'ratio':>6}  {'per-round ratios':<32}"
          f"{'CPU tokens/s':>12} {'ratio':>6}")  # fmt: skip
    for group, rows in results.items():
        baseline = next(iter(rows.values()))
        for name, values in rows.items():
            columns = []
            for clock in (0, 1):
                ratios = [v[clock] / b[clock] for v, b in zip(values, baseline)]
                columns.append((statistics.median(v[clock] for v in values), statistics.median(ratios), ratios))
            (wall, wall_ratio, per_round), (cpu, cpu_ratio, _) = columns
            assert all(math.isfinite(x) for x in per_round)
            cpu_text = f"{cpu:>12,.0f} {cpu_ratio:>5.2f}x" if math.isfinite(cpu) else f"{'-':>12}"
            print(f"{group:<12} {name:<24} {wall:>9,.0f} {wall_ratio:>5.2f}x  "
                  f"{' '.join(f'{x:.2f}' for x in per_round):<32}{cpu_text}")  # fmt: skip


def read_text(data_dir: str | None) -> list[str]:
    if data_dir:
        return load_time_machine(data_dir=data_dir).lines()
    from divekit.data.corpora import normalize_lines

    return normalize_lines(pydoc_lines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding timemachine.txt (default: the embedded pydoc text)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=40_000)
    parser.add_argument("--num-hiddens", type=int, help="one hidden size for every model (default: the book's)")
    parser.add_argument("--only", choices=("fast", "trainer"), help="run one of the two comparisons")
    parser.add_argument("--compile-step", action="store_true", help="add the readable models with a compiled cell")
    parser.add_argument("--threads", type=int, help="default: divekit's choice from idle cores")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, to check the script end to end")
    args = parser.parse_args()
    if args.dry_run:
        args.rounds, args.max_tokens, args.num_hiddens = 2, 3_000, 16
    threads = configure_threads(args.threads)
    lines = read_text(args.data_dir)
    ids, vocab = build_corpus(lines, token="char", max_tokens=args.max_tokens)
    batches = list(SequentialBatches(torch.tensor(ids), batch_size=32, num_steps=35))
    V = len(vocab)
    hiddens = {kind: args.num_hiddens or size for kind, size in BOOK_HIDDENS.items()}
    onednn = "available" if recurrent_fast._onednn() else "not available"
    print(f"{len(ids):,} character tokens, vocabulary {V}, batch 32 x 35 steps, hidden sizes {hiddens}, "
          f"{threads} threads, {len(batches)} batches per round, torch {torch.__version__}, oneDNN {onednn}")  # fmt: skip
    groups = {}
    if args.only in (None, "fast"):
        groups |= {f"{kind} {H}": fast_contenders(kind, V, H, compile_step=args.compile_step)
                   for kind, H in hiddens.items()}  # fmt: skip
    if args.only in (None, "trainer"):
        groups["lstm trainer"] = trainer_contenders(lines, V, hiddens["lstm"], args.max_tokens)
    report(race(groups, batches, args.rounds))


if __name__ == "__main__":
    main()
