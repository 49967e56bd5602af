"""Training tokens/s of divekit's recurrent language models against the textbook loops (notes §6.4-§6.6).

Two comparisons, each run in this process, interleaved round by round with
the same thread count and the same batches (vocabulary 28, batch 32, 35 steps,
one-hot input, SGD lr 1, gradient norm clipped to 1, the hidden state carried
and detached between batches):

1. divekit's scratch RNN model (``rnn-lm --scratch``: the input projection of
   all steps is one matrix product, the output layer one more) against the
   textbook from-scratch loop, which multiplies the one-hot input and
   computes the output inside the per-time-step Python loop;
2. divekit's concise LSTM (``lstm-lm`` trained by divekit's ``Trainer`` with
   the language-model task) against a bare ``nn.LSTM`` + ``nn.Linear``
   training loop.

It prints each round's tokens/s and the median ratio (divekit / baseline).

    flock /work/cpu.lock python benchmarks/rnn_speed.py [--data-dir ../shared/data/timemachine]
    python benchmarks/rnn_speed.py --dry-run       # tiny sizes, end to end, seconds
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from divekit.data.corpora import build_corpus, load_time_machine, pydoc_lines  # noqa: E402
from divekit.data.sampling import SequentialBatches  # noqa: E402
from divekit.device import configure_threads  # noqa: E402
from divekit.models import create_model  # noqa: E402


# ------------------------------------------------------------ the textbook loop
class TextbookRNN:
    """The from-scratch RNN as the book writes it: every product inside the time loop."""

    def __init__(self, vocab_size: int, num_hiddens: int) -> None:
        def normal(*shape: int) -> torch.Tensor:
            return (torch.randn(shape) * 0.01).requires_grad_()

        self.vocab_size = vocab_size
        self.W_xh, self.W_hh = normal(vocab_size, num_hiddens), normal(num_hiddens, num_hiddens)
        self.b_h = torch.zeros(num_hiddens, requires_grad=True)
        self.W_hq, self.b_q = normal(num_hiddens, vocab_size), torch.zeros(vocab_size, requires_grad=True)
        self.params = [self.W_xh, self.W_hh, self.b_h, self.W_hq, self.b_q]

    def __call__(self, X: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = []
        for X_t in F.one_hot(X.T, self.vocab_size).float():  # (N, V) per step
            H = torch.tanh(X_t @ self.W_xh + H @ self.W_hh + self.b_h)
            outputs.append(H @ self.W_hq + self.b_q)
        return torch.cat(outputs), H  # (T * N, V), time-major


def textbook_steps(model: TextbookRNN, batches: list, num_hiddens: int) -> float:
    """Train on ``batches``; return tokens/s."""
    H = torch.zeros(batches[0][0].shape[0], num_hiddens)
    start = time.perf_counter()
    for X, Y in batches:
        logits, H = model(X, H.detach())
        loss = F.cross_entropy(logits, Y.T.reshape(-1))
        for p in model.params:
            p.grad = None
        loss.backward()
        norm = torch.sqrt(sum((p.grad**2).sum() for p in model.params))
        with torch.no_grad():
            scale = min(1.0, 1.0 / float(norm))
            for p in model.params:
                p -= 1.0 * scale * p.grad
    return sum(Y.numel() for _, Y in batches) / (time.perf_counter() - start)


# ------------------------------------------------------------------ bare loops
def model_steps(model: nn.Module, batches: list) -> float:
    """A minimal loop around a divekit language model (what the trainer's step does); tokens/s."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    state = None
    start = time.perf_counter()
    for X, Y in batches:
        logits, state = model(X, state)
        state = state.detach() if isinstance(state, torch.Tensor) else tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return sum(Y.numel() for _, Y in batches) / (time.perf_counter() - start)


class BareLSTM(nn.Module):
    def __init__(self, vocab_size: int, num_hiddens: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(vocab_size, num_hiddens)
        self.out = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X, state=None):
        Y, state = self.lstm(F.one_hot(X.T, self.vocab_size).float(), state)
        return self.out(Y).transpose(0, 1), state


def divekit_lstm_epoch(trainer) -> float:
    """One more epoch of divekit's Trainer; its training-step tokens/s."""
    trainer.config.train.epochs += 1
    trainer.fit()
    return trainer.history[-1]["train_tokens_per_s"]


def make_trainer(text_lines: list[str], *, max_tokens: int, num_hiddens: int, batch_size: int, num_steps: int):
    from divekit.data.corpora import TextCorpus
    from divekit.runs.run import build_model, build_task, resolve_config
    from divekit.engine.trainer import Trainer

    config = resolve_config("lstm-lm", data="pydoc", overrides={
        "task.max_tokens": max_tokens, "model.options.num_hiddens": num_hiddens, "data.batch_size": batch_size,
        "task.num_steps": num_steps, "train.progress": False, "train.device": "cpu"})  # fmt: skip
    config.train.epochs = 0  # divekit_lstm_epoch raises it one epoch at a time
    task = build_task(config, TextCorpus("bench", text_lines, "benchmark"))
    model = build_model(config, task.model_options())
    return Trainer(model, task, config, log=lambda message: None)


# --------------------------------------------------------------------- driver
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding timemachine.txt (default: the embedded pydoc text)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=40_000)
    parser.add_argument("--num-hiddens", type=int, default=256)
    parser.add_argument("--threads", type=int, help="default: divekit's choice from idle cores")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, to check the script end to end")
    args = parser.parse_args()
    if args.dry_run:
        args.rounds, args.max_tokens, args.num_hiddens = 2, 3_000, 16
    threads = configure_threads(args.threads)
    lines = load_time_machine(data_dir=args.data_dir).lines() if args.data_dir else pydoc_lines()
    if not args.data_dir:
        from divekit.data.corpora import normalize_lines

        lines = normalize_lines(lines)
    ids, vocab = build_corpus(lines, token="char", max_tokens=args.max_tokens)
    batches = list(SequentialBatches(torch.tensor(ids), batch_size=32, num_steps=35))
    V, H = len(vocab), args.num_hiddens
    print(f"{len(ids):,} character tokens, vocabulary {V}, batch 32 x 35 steps, hidden {H}, {threads} threads, "
          f"{len(batches)} batches per round, torch {torch.__version__}")  # fmt: skip

    torch.manual_seed(0)
    scratch, textbook = create_model("rnn-lm", vocab_size=V, num_hiddens=H, scratch=True), TextbookRNN(V, H)
    trainer = make_trainer(lines, max_tokens=args.max_tokens, num_hiddens=H, batch_size=32, num_steps=35)
    bare = BareLSTM(V, H)
    textbook_steps(textbook, batches[:2], H), model_steps(scratch, batches[:2]), model_steps(bare, batches[:2])  # warm-up
    rows = {"scratch RNN": [], "textbook RNN loop": [], "divekit LSTM (Trainer)": [], "bare nn.LSTM loop": []}
    for r in range(args.rounds):
        rows["scratch RNN"].append(model_steps(scratch, batches))
        rows["textbook RNN loop"].append(textbook_steps(textbook, batches, H))
        rows["divekit LSTM (Trainer)"].append(divekit_lstm_epoch(trainer))
        rows["bare nn.LSTM loop"].append(model_steps(bare, batches))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rows.items()) + " tokens/s")
    median = {k: statistics.median(v) for k, v in rows.items()}
    for k, v in median.items():
        print(f"{k:<24} {v:>10,.0f} tokens/s (median of {args.rounds})")
    ratio_rnn = statistics.median(a / b for a, b in zip(rows["scratch RNN"], rows["textbook RNN loop"]))
    ratio_lstm = statistics.median(a / b for a, b in zip(rows["divekit LSTM (Trainer)"], rows["bare nn.LSTM loop"]))
    print(f"scratch RNN / textbook loop:        {ratio_rnn:.2f}x (median of per-round ratios)")
    print(f"divekit LSTM / bare nn.LSTM loop:   {ratio_lstm:.2f}x (median of per-round ratios)")
    assert math.isfinite(ratio_rnn) and math.isfinite(ratio_lstm)


if __name__ == "__main__":
    main()
