"""What a DDP step costs beyond its computation, on this machine (the why behind benchmarks/scaling.py).

Run it under torchrun with 2 processes:

    torchrun --standalone --nproc_per_node=2 benchmarks/ddp_overhead.py

Each process uses 1 thread. It prints, from rank 0:

1. the time of a gloo all-reduce of one number and of 1.2 MB (an LSTM language
   model's gradients);
2. one training step (forward, backward, SGD) of LeNet (batch 128 per process)
   and of a character LSTM language model (batch 16 x 35 per process), first
   with both processes computing on their own, then with the model in
   DistributedDataParallel;
3. the LSTM step at batch 16 and 32, to show that half a batch is not half the time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from divekit.models import create_model  # noqa: E402


def per_call_ms(fn: Callable[[], None], calls: int) -> float:
    for _ in range(3):
        fn()
    dist.barrier()
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e3


def lenet_step(batch: int) -> tuple[torch.nn.Module, Callable[[torch.nn.Module], torch.Tensor]]:
    model = create_model("lenet").to(memory_format=torch.channels_last)  # as the trainer runs it on a CPU
    X = torch.rand(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    return model, lambda net: F.cross_entropy(net(X), y)


def lstm_step(batch: int) -> tuple[torch.nn.Module, Callable[[torch.nn.Module], torch.Tensor]]:
    model = create_model("lstm-lm", vocab_size=28, num_hiddens=256)
    X, Y = torch.randint(0, 28, (batch, 35)), torch.randint(0, 28, (batch, 35))
    return model, lambda net: F.cross_entropy(net(X)[0].reshape(-1, 28), Y.reshape(-1))


def step_ms(build, batch: int, *, ddp: bool) -> float:
    model, loss_of = build(batch)
    net = DistributedDataParallel(model) if ddp else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_of(net).backward()
        optimizer.step()

    return per_call_ms(step, 30)


def main() -> None:
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lines = []
    for numel in (1, 300_000):
        tensor = torch.ones(numel)
        lines.append(f"all-reduce of {numel * 4 / 1e6:g} MB: {per_call_ms(lambda: dist.all_reduce(tensor), 200):.2f} ms")
    for name, build, batch in (("LeNet", lenet_step, 128), ("LSTM LM", lstm_step, 16)):
        alone, wrapped = step_ms(build, batch, ddp=False), step_ms(build, batch, ddp=True)
        lines.append(f"{name}, batch {batch} per process: {alone:.1f} ms computing alone, {wrapped:.1f} ms in DDP")
    lines.append(f"LSTM LM alone: {step_ms(lstm_step, 16, ddp=False):.1f} ms at batch 16, "
                 f"{step_ms(lstm_step, 32, ddp=False):.1f} ms at batch 32")  # fmt: skip
    if dist.get_rank() == 0:
        print("\n".join(lines))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
