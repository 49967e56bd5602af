"""Language modelling (notes §6.3-§6.8): next-token cross-entropy, perplexity, hidden-state handling.

The task turns a :class:`~divekit.data.corpora.TextCorpus` into one stream
of token ids and trains any ``language-model`` family model on it:

- the loss is the mean cross-entropy of predicting every next token, and the
  metric is perplexity, ``exp`` of that mean (§6.4.2 困惑度);
- with sequential partitioning the hidden state flows from batch to batch,
  detached so gradients stop at the batch boundary; it starts afresh each
  epoch and, with random sampling, for every batch;
- the hidden state is part of :meth:`state_dict`, so a run resumed from a
  mid-epoch checkpoint continues bit for bit;
- gradient clipping is the trainer's (``optim.clip_grad``, 1 in the
  models' recipes); throughput is counted in tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from divekit.data.corpora import NORMALIZATIONS, TextCorpus, build_corpus
from divekit.data.sampling import RandomSequenceBatches, SequentialBatches, evaluation_batches
from divekit.errors import ConfigError
from divekit.models.registry import ModelEntry
from divekit.tasks.base import StepOutput, Task, register_task

TOKENS = ("char", "word")
SAMPLINGS = ("sequential", "random")

State = torch.Tensor | tuple[torch.Tensor, ...] | None


@dataclass
class LanguageModelConfig:
    """Options of the language-modelling task (the run config's ``task`` section).

    Attributes:
        token: ``char`` or ``word`` tokens.
        num_steps: time steps per subsequence (``--num-steps``).
        sampling: ``sequential`` (the state carries over) or ``random``.
        max_tokens: train on the first N tokens only (``None``: all).
        min_freq: tokens rarer than this become ``<unk>``.
        normalize: ``letters`` (the book's cleaning) or ``none``.
        valid_fraction: hold out this last fraction of the tokens to report
            test perplexity (0, as in the book: train perplexity only).
    """

    token: str = "char"
    num_steps: int = 35
    sampling: str = "sequential"
    max_tokens: int | None = None
    min_freq: int = 0
    normalize: str = "letters"
    valid_fraction: float = 0.0

    def __post_init__(self) -> None:
        for name, value, valid in (("token", self.token, TOKENS), ("sampling", self.sampling, SAMPLINGS),
                                   ("normalize", self.normalize, NORMALIZATIONS)):  # fmt: skip
            if value not in valid:
                raise ConfigError(f"task.{name}: unknown value {value!r}; use one of {', '.join(valid)}")
        if self.num_steps < 1:
            raise ConfigError(f"task.num_steps must be at least 1, got {self.num_steps}")
        if self.max_tokens is not None and self.max_tokens < 2:
            raise ConfigError(f"task.max_tokens must be at least 2, got {self.max_tokens}")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"task.valid_fraction must be in [0, 1), got {self.valid_fraction}")


def detach_state(state: State) -> State:
    """Cut the graph at a batch boundary; the values carry on."""
    if state is None:
        return None
    return state.detach() if isinstance(state, torch.Tensor) else tuple(s.detach() for s in state)


def perplexity(mean_loss: float) -> float:
    """``exp`` of the mean cross-entropy in nats (§6.4.2), ``inf`` when it overflows."""
    return math.exp(mean_loss) if mean_loss < 700 else math.inf


class LanguageModelTask(Task):
    """Train a language model on one text; report loss and perplexity per epoch."""

    kind = "text"
    families = ("language-model",)
    unit = "tokens"

    def __init__(self, data: TextCorpus, config: LanguageModelConfig, *, batch_size: int,
                 eval_batch_size: int, model_entry: ModelEntry) -> None:  # fmt: skip
        self.data = data
        self.config = config
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        ids, self.vocab = build_corpus(data.lines(config.normalize), token=config.token,
                                       min_freq=config.min_freq, max_tokens=config.max_tokens)  # fmt: skip
        held_out = int(len(ids) * config.valid_fraction)
        self.train_ids = torch.tensor(ids[:len(ids) - held_out], dtype=torch.long)
        self.valid_ids = torch.tensor(ids[len(ids) - held_out:], dtype=torch.long)
        self.monitor = "test_ppl" if held_out else "train_ppl"
        self.state: State = None
        self._state_epoch = -1
        self._sampler(seed=0, rank=0, world_size=1)  # refuse a corpus too short for one batch, before training

    def model_options(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab)}

    def _sampler(self, *, seed: int, rank: int, world_size: int) -> RandomSequenceBatches | SequentialBatches:
        cls = SequentialBatches if self.config.sampling == "sequential" else RandomSequenceBatches
        return cls(self.train_ids, batch_size=self.batch_size, num_steps=self.config.num_steps, seed=seed,
                   rank=rank, world_size=world_size)  # fmt: skip

    def train_batches(self, *, seed: int) -> RandomSequenceBatches | SequentialBatches:
        return self._sampler(seed=seed, rank=self.runtime.rank, world_size=self.runtime.world_size)

    def begin_epoch(self, model: nn.Module, *, epoch: int) -> None:
        if epoch != self._state_epoch:  # a new epoch starts from a zero state; a resumed one keeps its own
            self.state = None
            self._state_epoch = epoch

    def count(self, batch: Any) -> int:
        return int(batch[1].numel())

    def train_step(self, model: nn.Module, batch: Any) -> StepOutput:
        device = self.runtime.device
        X, Y = (t.to(device, non_blocking=True) for t in batch)
        carried = self.state if self.config.sampling == "sequential" else None
        logits, state = model(X, carried)  # logits: (N, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        if self.config.sampling == "sequential":
            self.state = detach_state(state)
        return StepOutput(loss, {"loss": loss.detach() * Y.numel(), "count": Y.numel()})

    @torch.no_grad()
    def eval_sums(self, model: nn.Module) -> dict[str, float]:
        """Loss sums over the held-out tokens (none without ``valid_fraction``), state carried throughout."""
        if len(self.valid_ids) < 2:
            return {}
        rt = self.runtime
        loss = count = 0.0
        state: State = None
        for X, Y in evaluation_batches(self.valid_ids, batch_size=self.eval_batch_size, num_steps=self.config.num_steps,
                                       rank=rt.rank, world_size=rt.world_size):  # fmt: skip
            Y = Y.to(rt.device)
            logits, state = model(X.to(rt.device), state)
            loss += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction="sum").item()
            count += Y.numel()
        return {"loss": loss, "count": count}

    def metrics(self, sums: dict[str, float], prefix: str) -> dict[str, float]:
        count = float(sums.get("count", 0.0))
        if not count:
            return {}
        loss = float(sums["loss"]) / count
        return {f"{prefix}_loss": loss, f"{prefix}_ppl": perplexity(loss)}

    def info(self) -> dict[str, Any]:
        c = self.config
        return {**self.data.info(), "token": c.token, "normalize": c.normalize, "num_steps": c.num_steps,
                "vocab_size": len(self.vocab), "train_tokens": len(self.train_ids),
                "valid_tokens": len(self.valid_ids), "model_options": self.model_options()}  # fmt: skip

    def prediction_extras(self) -> dict[str, str]:
        return {"vocab.json": self.vocab.to_json()}

    # ------------------------------------------------- resumable hidden state
    def state_dict(self) -> dict[str, Any]:
        parts = None if self.state is None else [self.state] if isinstance(self.state, torch.Tensor) else list(self.state)
        return {"epoch": self._state_epoch, "hidden": None if parts is None else [p.cpu() for p in parts]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state_epoch = int(state.get("epoch", -1))
        parts = state.get("hidden")
        if parts is None:
            self.state = None
            return
        parts = [p.to(self.runtime.device) for p in parts]
        self.state = parts[0] if len(parts) == 1 else tuple(parts)


@register_task("text", LanguageModelConfig)
def build_language_model(data: TextCorpus, config: LanguageModelConfig, **kwargs: Any) -> Task:
    return LanguageModelTask(data, config, **kwargs)
