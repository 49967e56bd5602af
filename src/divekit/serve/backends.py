"""What the service computes for each task family, one batch at a time.

Each service checks a request against the :class:`~divekit.serve.limits.Limits`
(raising :class:`~divekit.serve.limits.RequestError`), turns it into an item,
and computes a whole list of items at once in :meth:`run_batch` (what the
:class:`~divekit.serve.batcher.MicroBatcher` calls).
"""

from __future__ import annotations

import io as _io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from divekit.errors import DivekitError
from divekit.runs.load import LoadedRun
from divekit.serve.limits import Limits, RequestError, at_least, within


class ImageClassifier:
    """Uploaded image -> the top-k classes, as ``divekit predict`` computes them."""

    task = "classification"

    def __init__(self, run: LoadedRun, limits: Limits) -> None:
        self.run, self.limits = run, limits
        self.channels, self.size, _ = run.info["input_size"]
        self.names: list[str] = run.info["class_names"]

    def prepare(self, data: bytes, *, top_k: int) -> tuple[np.ndarray, int]:
        """Check and decode an upload to uint8 ``(C, size, size)``, with its ``k`` (runs off the event loop)."""
        from divekit.inference.predict import load_image
        from PIL import Image, UnidentifiedImageError

        at_least(top_k, 1, what="top_k")
        within(top_k, min(self.limits.max_top_k, len(self.names)), what="top_k", name="the number of classes or max_top_k")
        if not data:
            raise RequestError("the upload is empty; send an image file in the form field 'file'")
        try:
            with Image.open(_io.BytesIO(data)) as image:  # reads the header only: the size before any decoding
                width, height = image.size
        except (UnidentifiedImageError, OSError) as err:
            raise RequestError(f"the upload is not a readable image ({type(err).__name__})", status=415) from err
        within(width * height, self.limits.max_pixels, what=f"the image ({width}x{height})", name="max_pixels",
               unit=" pixels", status=413)  # fmt: skip
        with tempfile.TemporaryDirectory() as folder:  # the one image loader prediction uses reads files
            path = Path(folder) / "upload"
            path.write_bytes(data)
            try:
                return load_image(path, channels=self.channels, size=self.size), top_k
            except DivekitError as err:
                raise RequestError(str(err).replace(str(path), "the upload"), status=415) from err

    @torch.inference_mode()
    def run_batch(self, items: Sequence[tuple[np.ndarray, int]]) -> list[list[dict[str, Any]]]:
        from divekit.data.sources.images import to_model_input

        images = torch.from_numpy(np.stack([image for image, _ in items]))
        device = next(self.run.model.parameters()).device
        probs = self.run.model(to_model_input(images, size=self.size, device=device)).float().softmax(dim=1)
        out = []
        for row, (_, k) in zip(probs, items):
            values, indices = row.topk(k)
            out.append([{"class": self.names[i], "index": i, "probability": p}
                        for i, p in zip(indices.tolist(), values.tolist())])  # fmt: skip
        return out


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    length: int = 50
    temperature: float = 0.0
    top_k: int | None = None
    seed: int | None = None


class LanguageModel:
    """Prompt -> its continuation; several prompts are stepped through the model together."""

    task = "language-model"

    def __init__(self, run: LoadedRun, limits: Limits) -> None:
        from divekit.inference.generate import TextGenerator

        self.limits = limits
        self.generator = TextGenerator(run.model, run.vocab("vocab.json"), run.info.get("token", "char"),
                                       run.info.get("normalize", "letters"))  # fmt: skip

    def prepare(self, request: GenerationRequest) -> tuple[GenerationRequest, list[int]]:
        lim = self.limits
        within(len(request.prompt), lim.max_text_chars, what=f"the prompt ({len(request.prompt):,} characters)",
               name="max_text_chars", unit=" characters")  # fmt: skip
        at_least(request.length, 1, what="length")
        within(request.length, lim.max_length, what="length", name="max_length", unit=" tokens")
        at_least(request.temperature, 0, what="temperature")
        if request.top_k is not None:
            at_least(request.top_k, 1, what="top_k")
            within(request.top_k, lim.max_top_k, what="top_k", name="max_top_k")
        vocab = self.generator.vocab
        ids = [vocab.token_to_idx.get(t, vocab.unk) for t in self.generator.tokens(request.prompt)]
        if not ids:
            raise RequestError(f"the prompt {request.prompt[:40]!r} has no tokens after cleaning; give some text")
        return request, ids

    @torch.inference_mode()
    def run_batch(self, items: Sequence[tuple[GenerationRequest, list[int]]]) -> list[str]:
        from divekit.inference.generate import pick_next

        model, device = self.generator.model.eval(), self.generator.device
        last, states = [], []
        for _, ids in items:  # prompts differ in length: each warms up alone
            logits, state = model(torch.tensor([ids], device=device), None)
            last.append(logits[0, -1])
            states.append(state)
        state = join_states(states)
        generators = [torch.Generator().manual_seed(r.seed) if r.seed is not None else None for r, _ in items]
        steps = max(r.length for r, _ in items)
        out: list[list[int]] = [[] for _ in items]
        for step in range(steps):
            for i, (request, _) in enumerate(items):
                out[i].append(pick_next(last[i], temperature=request.temperature, top_k=request.top_k,
                                        generator=generators[i]))  # fmt: skip
            if step + 1 < steps:
                logits, state = model(torch.tensor([[ids[-1]] for ids in out], device=device), state)
                last = list(logits[:, -1])
        idx = self.generator.vocab.idx_to_token
        return [self.generator.join(self.generator.tokens(r.prompt) + [idx[t] for t in ids[: r.length]])
                for (r, _), ids in zip(items, out)]  # fmt: skip


def join_states(states: list[Any]) -> Any:
    """Recurrent states of single sequences, ``(layers, 1, H)`` (or ``(h, c)`` pairs), as one batch."""
    if torch.is_tensor(states[0]):
        return torch.cat(states, dim=1)
    return tuple(torch.cat(parts, dim=1) for parts in zip(*states))


class Translation:
    """Sentence -> translation, with the decoder's attention to the source on request."""

    task = "seq2seq"

    def __init__(self, run: LoadedRun, limits: Limits) -> None:
        from divekit.inference.translate import Translator

        self.limits = limits
        self.translator = Translator(run.model, run.vocab("src_vocab.json", size_option="src_vocab_size"),
                                     run.vocab("tgt_vocab.json", size_option="tgt_vocab_size"),
                                     num_steps=int(run.info["num_steps"]))  # fmt: skip

    def prepare(self, sentence: str) -> str:
        within(len(sentence), self.limits.max_text_chars, what=f"the sentence ({len(sentence):,} characters)",
               name="max_text_chars", unit=" characters")  # fmt: skip
        if not sentence.strip():
            raise RequestError("the sentence is empty; give some words to translate")
        return sentence

    def run_batch(self, sentences: Sequence[str]) -> list[dict[str, Any]]:
        return [{"translation": t.text, "truncated": t.truncated}
                for t in self.translator.translate_batch(list(sentences))]  # fmt: skip

    def with_attention(self, sentence: str) -> dict[str, Any]:
        """The translation and the last decoder layer's attention to the source, averaged over heads."""
        maps = self.translator.attention_maps(sentence)
        weights = maps.cross[-1].mean(dim=0).tolist() if maps.cross else []  # (T, S)
        words = [w for w in maps.output_tokens if w != "<eos>"]
        return {"translation": " ".join(words), "attention": {"source": maps.source_tokens,
                                                              "output": maps.output_tokens, "weights": weights}}


SERVICES = {cls.task: cls for cls in (ImageClassifier, LanguageModel, Translation)}
