"""Sample predictions to look at while a run trains (shown by the TensorBoard callback).

A samples hook takes the model (in eval mode) and a few evaluation examples
already on the device, and returns :class:`~divekit.engine.tensorboard.Samples`:

- a classifier: the images, each captioned with its predicted class, its probability and the true class;
- a language model: text generated greedily from the start of each of a few held-out sequences;
- an encoder-decoder: greedy translations of a few held-out sources, beside their references.

The facts they need (class names, vocabularies, tokenisation) are the ones
prediction reads from a run folder (``task.json`` and the vocabulary files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from divekit.data.text import Vocab
from divekit.engine.tensorboard import SampleFn, Samples
from divekit.runs.load import OLD_KINDS

PROMPT_TOKENS = 10
GENERATED_TOKENS = 40
MAX_TEXTS = 4


def class_samples(class_names: list[str] | None) -> SampleFn:
    """Images captioned ``pred NAME (p) / true NAME`` (class indices when the names are unknown)."""

    def name(index: int) -> str:
        return class_names[index] if class_names and 0 <= index < len(class_names) else str(index)

    def show(model: nn.Module, batch: Any) -> Samples:
        X, y = batch[0], batch[1]
        probs = model(X).float().softmax(dim=1)
        p, pred = probs.max(dim=1)
        captions = [f"pred {name(c)} ({q:.2f}) / true {name(t)}" for c, q, t in zip(pred.tolist(), p.tolist(), y.tolist())]
        return Samples(images=X.float() if X.dim() == 4 else None, captions=captions)

    return show


def text_samples(vocab: Vocab, *, token: str) -> SampleFn:
    """Greedy continuations of the first :data:`PROMPT_TOKENS` tokens of a few held-out sequences."""
    sep = "" if token == "char" else " "

    def show(model: nn.Module, batch: Any) -> Samples:
        texts = []
        for row in batch[0][:MAX_TEXTS]:
            prompt = row[:PROMPT_TOKENS]
            generated = continue_greedily(model, prompt, GENERATED_TOKENS)
            texts.append(f"{sep.join(vocab.to_tokens(prompt.tolist()))} | {sep.join(vocab.to_tokens(generated))}")
        return Samples(texts=texts)

    return show


def continue_greedily(model: nn.Module, prompt: torch.Tensor, length: int) -> list[int]:
    """``length`` most probable next token ids after the ids ``prompt (T,)`` (a language model's contract)."""
    logits, state = model(prompt[None], None)  # warm-up: (1, T, V)
    out: list[int] = []
    for _ in range(length):
        out.append(int(logits[0, -1].argmax()))
        logits, state = model(prompt.new_tensor([[out[-1]]]), state)
    return out


def translation_samples(src_vocab: Vocab, tgt_vocab: Vocab) -> SampleFn:
    """Greedy translations of a few held-out sources: ``source -> output (reference)``."""
    from divekit.data.translation import BOS, EOS
    from divekit.inference.decoding import greedy_decode

    def words(vocab: Vocab, ids: list[int], length: int) -> str:
        tokens = vocab.to_tokens(ids[:length])
        return " ".join(t for t in tokens if t != EOS)

    def show(model: nn.Module, batch: Any) -> Samples:
        src, src_valid, tgt, tgt_valid = (t[:MAX_TEXTS] for t in batch[:4])
        if tgt.dim() == 3:  # several references: show the first
            tgt, tgt_valid = tgt[:, 0], tgt_valid[:, 0]
        outputs = greedy_decode(model, src, src_valid, bos=tgt_vocab[BOS], eos=tgt_vocab[EOS], max_len=tgt.shape[-1])
        texts = [f"{words(src_vocab, s, n)} -> {' '.join(tgt_vocab.to_tokens(out))} ({words(tgt_vocab, t, m)})"
                 for s, n, out, t, m in zip(src.tolist(), src_valid.tolist(), outputs, tgt.tolist(), tgt_valid.tolist())]  # fmt: skip
        return Samples(texts=texts)

    return show


def samples_from_folder(folder: str | Path) -> SampleFn | None:
    """The samples hook for the run in ``folder``, from its ``task.json`` (``None`` for a task without one)."""
    folder = Path(folder)
    info = json.loads((folder / "task.json").read_text(encoding="utf-8"))
    task = OLD_KINDS.get(info.get("task", ""), info.get("task", ""))
    if task == "classification":
        return class_samples(info.get("class_names"))
    if task == "language-model" and (folder / "vocab.json").is_file():
        return text_samples(Vocab.load(folder / "vocab.json"), token=info.get("token", "char"))
    if task == "seq2seq" and (folder / "src_vocab.json").is_file():
        return translation_samples(Vocab.load(folder / "src_vocab.json"), Vocab.load(folder / "tgt_vocab.json"))
    return None
