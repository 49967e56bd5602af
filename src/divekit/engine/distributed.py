"""Distributed training on PyTorch's own engine (``torchrun`` + DDP).

``torchrun`` starts one process per device and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address; :func:`init_distributed` joins the
process group (gloo on CPU, nccl on CUDA). Nothing here launches processes or
moves parameters by hand.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from divekit.errors import DivekitError


@dataclass(frozen=True)
class DistContext:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_context() -> DistContext:
    """The context ``torchrun`` describes in the environment (single process if none)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistContext(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
    )


def init_distributed(device_type: str) -> DistContext:
    """Join the process group if ``torchrun`` started this process; return the context."""
    ctx = env_context()
    if ctx.enabled and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sums(sums: dict[str, float], ctx: DistContext, device: torch.device) -> dict[str, float]:
    """Add metric sums across processes (every process gets the totals).

    Processes may hold different keys (one that had no evaluation batch holds
    none); the keys are agreed first, so the collective is the same everywhere.
    """
    if not ctx.enabled:
        return {k: float(v) for k, v in sums.items()}
    gathered: list[list[str]] = [[] for _ in range(ctx.world_size)]
    dist.all_gather_object(gathered, sorted(sums))
    keys = sorted(set().union(*gathered))
    if not keys:
        return {}
    values = torch.tensor([float(sums.get(k, 0.0)) for k in keys], dtype=torch.float64, device=_comm_device(device))
    dist.all_reduce(values)
    return dict(zip(keys, values.tolist()))


def all_reduce_tensor(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The sum of ``tensor`` over processes, as a tensor on its device (nothing is read on the host)."""
    if not ctx.enabled:
        return tensor
    total = tensor.clone()
    if dist.get_backend() == "nccl" or total.device.type == "cpu":
        dist.all_reduce(total)
        return total
    on_cpu = total.cpu()
    dist.all_reduce(on_cpu)
    return on_cpu.to(tensor.device)


def agree(values: list[bool | float], ctx: DistContext, device: torch.device) -> list[bool | float]:
    """Sum ``values`` over processes in one collective: flags come back set if set anywhere, numbers as totals."""
    if not ctx.enabled:
        return list(values)
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device(device))
    dist.all_reduce(tensor)
    return [bool(t) if isinstance(v, bool) else t for v, t in zip(values, tensor.tolist())]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def _comm_device(device: torch.device) -> torch.device:
    return device if dist.get_backend() == "nccl" else torch.device("cpu")


def is_communication_error(err: RuntimeError) -> bool:
    """Whether ``err`` is what a collective raises when a peer process is gone."""
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err)
    return any(word in text for word in ("gloo", "NCCL", "nccl", "Connection", "connection", "peer"))


class PeerFailure(DivekitError):
    """Another process of a distributed run died; this one stops too."""

    exit_code = 1


@contextlib.contextmanager
def failures_as_errors(ctx: DistContext, checkpoint_dir: Path | None) -> Iterator[None]:
    """One clear message for a full disk, or for the communication error a dead peer process causes."""
    from divekit.io import DiskWriteError

    try:
        yield
    except DiskWriteError as err:
        raise DiskWriteError(f"{err}. Training stopped: free some space, then continue with resume=True") from err
    except RuntimeError as err:
        if not (ctx.enabled and is_communication_error(err)):
            raise
        _outlive_the_launcher()
        first = re.sub(r"^\[[^\]]*\]\s*", "", str(err).strip().splitlines()[0]).split(". ")[0][:160]
        kept = f"the last checkpoint ({checkpoint_dir / 'last.pt'}) is kept; " if checkpoint_dir else ""
        raise PeerFailure(f"rank {ctx.rank}: another process of this distributed run failed or was killed "
                          f"({first}); {kept}restart the run with resume=True") from err  # fmt: skip


def _outlive_the_launcher() -> None:
    """Ignore SIGTERM from here on: this process is already stopping with an error.

    torchrun sends SIGTERM to the surviving processes once it sees one die; without
    this, that signal can cut a survivor off before it has said why it stops.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
