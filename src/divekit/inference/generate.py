"""Text generation with a trained language model (notes §6.4.1 ``predict``).

The prefix is cleaned and tokenised as the training text was, then read in
one forward pass to warm up the hidden state. Each next token is the most
probable one (greedy, as the book does), or is sampled from the softmax at a
``temperature``, optionally among the ``top_k`` most probable tokens only.
Tokens are yielded one at a time, so a caller can print them as they come
and process any number of prompts in bounded memory.

A bidirectional model (§6.8) saw, during training, the tokens *after* each
position through its backward direction; those do not exist while
generating, so its predictions are poor. It still runs, with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from divekit.data.corpora import normalize_line
from divekit.data.text import Vocab, tokenize
from divekit.errors import CheckpointError, ConfigError
from divekit.runs.load import load_run


class BidirectionalWarning(UserWarning):
    """Generation from a bidirectional language model, which cannot see the future it was trained on."""


def check_sampling(*, temperature: float = 0.0, top_k: int | None = None,
                   names: tuple[str, str] = ("temperature", "top_k")) -> None:  # fmt: skip
    """Refuse sampling options that cannot work, before anything is generated.

    ``names`` are what the messages call the two options (a caller may name
    its own flags).

    Raises:
        ConfigError: ``temperature`` is not a finite number >= 0 (NaN, inf,
            negative), or ``top_k`` is not an integer >= 1.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature < 0:  # fmt: skip
        raise ConfigError(f"{names[0]} must be a finite number >= 0 (0: greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"{names[1]} must be an integer >= 1 (or none: every token), got {top_k!r}")


def pick_next(logits: torch.Tensor, *, temperature: float = 0.0, top_k: int | None = None,
              generator: torch.Generator | None = None) -> int:  # fmt: skip
    """Choose the next token id from ``logits`` ``(V,)``.

    ``temperature == 0`` is greedy (argmax). Otherwise sample from
    ``softmax(logits / temperature)``, among the ``top_k`` largest logits if
    given. The largest logit is subtracted first, in float64, so that a tiny
    temperature tends to greedy instead of overflowing to NaN.
    """
    check_sampling(temperature=temperature, top_k=top_k)
    if not bool(torch.isfinite(logits).all()):
        raise CheckpointError("the model's scores are not finite (NaN or inf): its weights are corrupt")
    if temperature == 0:
        return int(logits.argmax())
    scores = logits.detach().double().cpu()
    candidates = torch.arange(len(scores))
    if top_k is not None and top_k < len(scores):
        scores, candidates = scores.topk(top_k)
    scaled = (scores - scores.max()) / temperature  # <= 0; the largest is exactly 0, so softmax is defined
    choice = torch.multinomial(scaled.softmax(dim=0), 1, generator=generator)
    return int(candidates[choice])


@dataclass
class TextGenerator:
    """A trained language model with the vocabulary and text handling it was trained with.

    Attributes:
        model: a ``language-model`` task model, in eval mode.
        vocab: its vocabulary.
        token: ``char`` or ``word``.
        normalize: how training text was cleaned (``letters`` or ``none``).
    """

    model: nn.Module
    vocab: Vocab
    token: str = "char"
    normalize: str = "letters"

    def __post_init__(self) -> None:
        if self.bidirectional:
            warnings.warn("this language model is bidirectional: in training each prediction also saw the tokens "
                          "after it, which do not exist when generating, so the text will be poor (notes §6.8)",
                          BidirectionalWarning, stacklevel=3)  # fmt: skip

    @classmethod
    def from_run(cls, run_dir: str | Path, *, which: str = "best", device: str = "cpu",
                 model_file: str | None = None) -> TextGenerator:  # fmt: skip
        """Load the model, vocabulary and tokenisation of a language-model run folder."""
        run = load_run(run_dir, which=which, device=device, model_file=model_file)
        if run.task != "language-model":
            raise ConfigError(f"{run_dir} is a {run.task} run; `generate` needs a language model")
        return cls(run.model, run.vocab("vocab.json"), run.info.get("token", "char"), run.info.get("normalize", "letters"))

    @property
    def bidirectional(self) -> bool:
        return getattr(self.model, "num_directions", 1) == 2

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tokens(self, text: str) -> list[str]:
        """``text`` cleaned and tokenised as the training text was."""
        return tokenize([normalize_line(text, self.normalize)], self.token)[0]

    def join(self, tokens: list[str]) -> str:
        return ("" if self.token == "char" else " ").join(tokens)

    def stream(self, prefix: str, *, length: int, temperature: float = 0.0, top_k: int | None = None,
               generator: torch.Generator | None = None) -> Iterator[str]:  # fmt: skip
        """Yield ``length`` tokens that continue ``prefix``, one at a time.

        Every option and the prefix are checked here, at the call, before any
        token is produced.
        """
        if length < 0:
            raise ConfigError(f"length must be >= 0, got {length}")
        check_sampling(temperature=temperature, top_k=top_k)
        ids = [self.vocab.token_to_idx.get(t, self.vocab.unk) for t in self.tokens(prefix)]
        if not ids:
            raise ConfigError(f"the prefix {prefix!r} has no tokens after cleaning ({self.normalize}); give some text")
        return self._generate(ids, length=length, temperature=temperature, top_k=top_k, generator=generator)

    @torch.inference_mode()
    def _generate(self, ids: list[int], *, length: int, temperature: float, top_k: int | None,
                  generator: torch.Generator | None) -> Iterator[str]:  # fmt: skip
        self.model.eval()
        logits, state = self.model(torch.tensor([ids], device=self.device), None)  # warm-up: (1, P, V)
        for i in range(length):
            next_id = pick_next(logits[0, -1], temperature=temperature, top_k=top_k, generator=generator)
            yield self.vocab.idx_to_token[next_id]
            if i + 1 < length:
                logits, state = self.model(torch.tensor([[next_id]], device=self.device), state)

    def complete(self, prefix: str, *, length: int, temperature: float = 0.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> str:  # fmt: skip
        """The cleaned prefix followed by ``length`` generated tokens, as one string."""
        generated = list(self.stream(prefix, length=length, temperature=temperature, top_k=top_k, generator=generator))
        return self.join(self.tokens(prefix) + generated)
