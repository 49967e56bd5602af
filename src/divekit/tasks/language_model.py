"""Language modelling (notes §6.3-§6.8): next-token cross-entropy, perplexity, hidden-state handling.

- The loss is the mean cross-entropy of predicting every next token, and the
  metric is perplexity, ``exp`` of that mean (§6.4.2 困惑度).
- With sequential partitioning the hidden state flows from batch to batch,
  detached so gradients stop at the batch boundary; it starts afresh each
  epoch and, with random sampling, for every batch.
- The hidden state is part of :meth:`LanguageModeling.state_dict`, so a run
  resumed from a mid-epoch checkpoint continues bit for bit.
- Gradient clipping is the trainer's (``optim.clip_grad``, 1 in the models'
  recipes); throughput is counted in tokens.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.sources.text import TextOptions, TextSource
from divekit.tasks.base import Objective, StepOutput, TaskEntry, output_mismatch, register_task

State = torch.Tensor | tuple[torch.Tensor, ...] | None


def detach_state(state: State) -> State:
    """Cut the graph at a batch boundary; the values carry on."""
    if state is None:
        return None
    return state.detach() if isinstance(state, torch.Tensor) else tuple(s.detach() for s in state)


def perplexity(mean_loss: float) -> float:
    """``exp`` of the mean cross-entropy in nats (§6.4.2), ``inf`` when it overflows."""
    return math.exp(mean_loss) if mean_loss < 700 else math.inf


class LanguageModeling(Objective):
    """Next-token cross-entropy of a model ``(X, state) -> (logits (N, T, V), state)``; perplexity.

    Batches are ``(X, Y)``: token ids ``(N, T)`` and the same window shifted by one.

    Args:
        carry_state: feed each training batch the (detached) state the previous
            one ended with (sequential partitioning); else start every batch afresh.
        eval_carry_state: the same for evaluation batches (default: as ``carry_state``).
        vocab_size: when known, the logits' last dimension must equal it.
    """

    task = "language-model"
    unit = "tokens"
    monitor = "ppl"

    def __init__(self, *, carry_state: bool = False, eval_carry_state: bool | None = None,
                 vocab_size: int | None = None) -> None:  # fmt: skip
        self.carry_state = carry_state
        self.eval_carry_state = carry_state if eval_carry_state is None else eval_carry_state
        self.vocab_size = vocab_size
        self.state: State = None
        self.eval_state: State = None
        self._state_epoch = -1

    def begin_epoch(self, *, epoch: int) -> None:
        if epoch != self._state_epoch:  # a new epoch starts from a zero state; a resumed one keeps its own
            self.state = None
            self._state_epoch = epoch

    def begin_eval(self) -> None:
        self.eval_state = None

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        X, Y = batch[0], batch[1]
        carried = _on(self.state, X.device) if self.carry_state else None
        logits, state = model(X, carried)
        loss = F.cross_entropy(*flat_pairs(logits, Y))
        if self.carry_state:
            self.state = detach_state(state)
        return StepOutput(loss, {"loss": loss.detach() * Y.numel(), "count": Y.numel()})

    def eval_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor | float]:
        X, Y = batch[0], batch[1]
        logits, state = model(X, self.eval_state if self.eval_carry_state else None)
        if self.eval_carry_state:
            self.eval_state = state
        flat_logits, targets = flat_pairs(logits, Y)
        loss = F.cross_entropy(flat_logits.float(), targets, reduction="sum")
        return {"loss": loss, "count": Y.numel()}

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        count = float(sums.get("count", 0.0))
        if not count:
            return {}
        loss = float(sums["loss"]) / count
        return {f"{prefix}_loss": loss, f"{prefix}_ppl": perplexity(loss)}

    def check_output(self, model: nn.Module, batch: Any) -> None:
        X = batch[0]
        out = model(X, None)
        width = self.vocab_size or "vocab_size"
        expected = f"(logits of shape ({X.shape[0]}, {X.shape[1]}, {width}), state)"
        if not (isinstance(out, tuple) and len(out) == 2 and torch.is_tensor(out[0])):
            raise output_mismatch("language-model", out, expected)
        logits = out[0]
        book = logits.dim() == 2 and logits.shape[0] == X.numel()  # the book's (T * N, V), time-major
        if not (book or tuple(logits.shape[:2]) == tuple(X.shape)) or (self.vocab_size and logits.shape[-1] != self.vocab_size):
            raise output_mismatch("language-model", out, expected)

    # ------------------------------------------------- resumable hidden state
    def state_dict(self) -> dict[str, Any]:
        parts = None if self.state is None else [self.state] if isinstance(self.state, torch.Tensor) else list(self.state)
        return {"epoch": self._state_epoch, "hidden": None if parts is None else [p.cpu() for p in parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state_epoch = int(state.get("epoch", -1))
        parts = state.get("hidden")
        self.state = None if parts is None else parts[0] if len(parts) == 1 else tuple(parts)


def flat_pairs(logits: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(N*T, V)`` and targets ``(N*T,)`` in matching order.

    Models here return ``(N, T, V)``; the book's ``RNNModel`` returns its
    outputs time-major, ``(T * N, V)``, whose targets are ``Y.T`` flattened.
    """
    if logits.dim() == 2:
        return logits, Y.T.reshape(-1)
    return logits.reshape(-1, logits.shape[-1]), Y.reshape(-1)


def _on(state: State, device: torch.device) -> State:
    """``state`` on ``device`` (a restored checkpoint keeps it on the CPU until the first step)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    return tuple(s.to(device) for s in state)


def _objective(source: TextSource, options: TextOptions) -> LanguageModeling:
    # the held-out tail is read as sequential rows, so its state always carries
    return LanguageModeling(carry_state=options.sampling == "sequential", eval_carry_state=True,
                            vocab_size=len(source.vocab))  # fmt: skip


register_task(TaskEntry(
    name="language-model",
    options=TextOptions,
    source=TextSource,
    objective=_objective,
    default_objective=LanguageModeling,
    description="token ids -> next-token logits (+ state); cross-entropy, perplexity (notes §6.3-§6.8)",
), module=__name__)  # fmt: skip
