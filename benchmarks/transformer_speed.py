"""Transformer speed, measured as ratios within one process.

1. Training throughput (target tokens/s) with the readable scratch attention
   against ``F.scaled_dot_product_attention`` (``attention="sdpa"``): the same
   weights, the same synthetic batches, full steps (forward, masked
   cross-entropy, backward, Adam).
2. Greedy decoding with the key-value cache against recomputing the whole
   prefix at every step, for outputs of 10, 50 and 200 tokens (``<eos>`` is
   ignored so every output has exactly that length).

Runs alternate between the variants and the median of the repeats is kept,
so background load affects both alike. Usage, from the repository root:

    PYTHONPATH=src flock /work/cpu.lock python benchmarks/transformer_speed.py

``--dry-run`` runs everything once at tiny sizes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

from divekit.models import create_model
from divekit.inference.decoding import greedy_decode
from divekit.tasks.seq2seq import masked_softmax_cross_entropy, teacher_forcing_inputs

SIZES = {  # name: model options, batch size, sequence length
    "book (d=32, 4 heads, T=10)": ({"num_hiddens": 32, "ffn_num_hiddens": 64, "num_heads": 4}, 64, 10),
    "larger (d=256, 8 heads, T=64)": ({"num_hiddens": 256, "ffn_num_hiddens": 1024, "num_heads": 8}, 32, 64),
}
VOCAB = 1000


def _models(options: dict) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    scratch = create_model("transformer", src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, dropout=0.1, **options)
    fused = create_model("transformer", src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, dropout=0.1, attention="sdpa",
                         **options)  # fmt: skip
    fused.load_state_dict(scratch.state_dict())
    return {"scratch": scratch, "sdpa": fused}


def _batch(batch: int, steps: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(1)
    X, Y = torch.randint(4, VOCAB, (batch, steps), generator=gen), torch.randint(4, VOCAB, (batch, steps), generator=gen)
    lens = torch.randint(steps // 2, steps + 1, (batch,), generator=gen)
    return X, lens, Y, lens.clone()


def _median_time(fn: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_throughput(options: dict, batch: int, steps: int, *, iterations: int, repeats: int) -> dict[str, float]:
    """Target tokens per second of full training steps, for each attention path."""
    X, X_len, Y, Y_len = _batch(batch, steps)
    runs = {}
    for name, model in _models(options).items():
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def train_steps(model=model, optimizer=optimizer) -> None:
            for _ in range(iterations):
                loss = masked_softmax_cross_entropy(model(X, teacher_forcing_inputs(Y, 2), X_len), Y, Y_len)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

        train_steps()  # warm-up
        runs[name] = train_steps
    seconds = {name: [] for name in runs}
    for _ in range(repeats):  # alternate, so both see the same background load
        for name, fn in runs.items():
            seconds[name].append(_median_time(fn, 1))
    tokens = float(Y_len.sum()) * iterations
    return {name: tokens / statistics.median(s) for name, s in seconds.items()}


def decoding_times(options: dict, lengths: list[int], *, batch: int, repeats: int) -> dict[int, dict[str, float]]:
    """Seconds to greedily decode ``length`` tokens for a batch, with and without the cache."""
    model = _models(options)["scratch"].eval()
    X, X_len, _, _ = _batch(batch, 10)
    out = {}
    for length in lengths:
        def decode(use_cache: bool, length=length) -> None:
            greedy_decode(model, X, X_len, bos=2, eos=3, max_len=length, use_cache=use_cache, stop_at_eos=False)

        decode(True), decode(False)  # warm-up
        cached, recomputed = [], []
        for _ in range(repeats):
            cached.append(_median_time(lambda: decode(True), 1))
            recomputed.append(_median_time(lambda: decode(False), 1))
        out[length] = {"cache_s": statistics.median(cached), "recompute_s": statistics.median(recomputed)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, one repeat: checks the script runs")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    repeats, iterations, lengths = (1, 1, [3, 5]) if args.dry_run else (5, 10, [10, 50, 200])
    sizes = {"tiny": ({"num_hiddens": 8, "ffn_num_hiddens": 16, "num_heads": 2}, 4, 6)} if args.dry_run else SIZES
    results: dict[str, dict] = {}
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print("| size | scratch tokens/s | sdpa tokens/s | sdpa / scratch |\n|---|---|---|---|")
    for label, (options, batch, steps) in sizes.items():
        rates = training_throughput(options, batch, steps, iterations=iterations, repeats=repeats)
        results[label] = {"training_tokens_per_s": rates}
        print(f"| {label} | {rates['scratch']:,.0f} | {rates['sdpa']:,.0f} | {rates['sdpa'] / rates['scratch']:.2f} |",
              flush=True)  # fmt: skip
    print("\n| size | output length | KV cache (s) | recompute (s) | recompute / cache |\n|---|---|---|---|---|")
    for label, (options, batch, _) in sizes.items():
        times = decoding_times(options, lengths, batch=min(batch, 16), repeats=repeats)
        results[label]["greedy_decoding"] = times
        for length, t in times.items():
            print(f"| {label} | {length} | {t['cache_s']:.4f} | {t['recompute_s']:.4f} | "
                  f"{t['recompute_s'] / t['cache_s']:.2f} |", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
