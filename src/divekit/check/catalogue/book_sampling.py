"""The book's sequence samplers (§6.3.2), as semantics to check a learner's generators against.

For an epoch that starts at ``offset`` (drawn at random in ``[0, num_steps]``):

- random sampling cuts ``(len(corpus) - 1 - offset) // num_steps`` non-overlapping
  subsequences from ``offset`` on, shuffles them, and yields ``num_subseqs //
  batch_size`` batches of ``batch_size`` of them;
- sequential partitioning lays ``((len(corpus) - offset - 1) // batch_size) *
  batch_size`` tokens out as ``batch_size`` rows and yields consecutive
  ``num_steps``-wide column blocks of them.

In both, ``Y`` is ``X`` shifted by one token. :func:`collect` runs a
learner's generator with Python's, numpy's and torch's random generators
seeded, so an epoch is reproducible whichever one it uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import islice
from typing import Any

import numpy
import torch

from divekit.check.harness import actual_tensor, equals

EPOCHS = 12  # epochs (seeds) run to see that the offset and the order change


def collect(fn: Callable, ex: dict[str, Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of one epoch, as long tensors; at most two more than the corpus has tokens."""
    random.seed(ex["seed"])
    numpy.random.seed(ex["seed"])
    torch.default_generator.manual_seed(ex["seed"])  # not torch.manual_seed: no CUDA bookkeeping per call
    batches = fn(list(ex["corpus"]), ex["batch_size"], ex["num_steps"])
    found = []
    for X, Y in islice(batches, len(ex["corpus"]) + 2):
        found.append((torch.as_tensor(X).long(), torch.as_tensor(Y).long()))
    return found


def windows(X: torch.Tensor) -> torch.Tensor:
    """What ``X`` would be if each row were consecutive tokens from its first one."""
    return X[:, :1] + torch.arange(X.shape[1])


def subsequence_count(ex: dict[str, Any], offset: int) -> int:
    return (len(ex["corpus"]) - 1 - offset) // ex["num_steps"]


class Counts(dict):
    """Batches per offset, shown as ``2 (offset 0) or 1 (offset 3)``."""

    def __repr__(self) -> str:
        return " or ".join(f"{count} (offset {offset})" for offset, count in self.items())


def random_counts(ex: dict[str, Any], starts: list[int]) -> Counts:
    """For each offset the starts allow, the number of batches random sampling yields."""
    ns = ex["num_steps"]
    if starts:
        offsets = [o for o in (min(starts) % ns, min(starts) % ns + ns) if o <= min(min(starts), ns)]
    else:
        offsets = list(range(ns + 1))
    return Counts({o: subsequence_count(ex, o) // ex["batch_size"] for o in offsets})


def book_sequential(corpus: list[int], batch_size: int, num_steps: int, offset: int) -> list[tuple[torch.Tensor, ...]]:
    """The book's sequential partitioning of ``corpus`` for an epoch starting at ``offset``."""
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset:offset + num_tokens]).reshape(batch_size, -1)  # (batch_size, row length)
    Ys = torch.tensor(corpus[offset + 1:offset + 1 + num_tokens]).reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    return [(Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]) for i in range(0, num_steps * num_batches, num_steps)]


def seq_data_iter_random(corpus: list[int], batch_size: int, num_steps: int):
    """The book's random sampling, as the reference generator (Python's ``random`` draws offset and order)."""
    offset = random.randint(0, num_steps - 1)
    count = subsequence_count({"corpus": corpus, "num_steps": num_steps}, offset)
    starts = [offset + num_steps * k for k in range(count)]
    random.shuffle(starts)
    for b in range(len(starts) // batch_size):
        chosen = starts[b * batch_size:(b + 1) * batch_size]
        yield (torch.tensor([corpus[s:s + num_steps] for s in chosen]),
               torch.tensor([corpus[s + 1:s + 1 + num_steps] for s in chosen]))  # fmt: skip


def seq_data_iter_sequential(corpus: list[int], batch_size: int, num_steps: int):
    """The book's sequential partitioning, as the reference generator."""
    yield from book_sequential(corpus, batch_size, num_steps, random.randint(0, num_steps))


# ----------------------------------------------------------------------------- hints
def same_as_x(failure) -> bool:
    """Y is X itself (not shifted)."""
    is_y = failure.label.startswith("batch") and ("Y (X shifted" in failure.label or failure.label.endswith(": Y"))
    return is_y and isinstance(failure.expected, torch.Tensor) and equals(failure, failure.expected - 1)


def dropped_subsequence(failure) -> bool:
    """As many batches as there would be with one subsequence less."""
    if failure.label != "number of batches" or not isinstance(failure.expected, dict):
        return False
    ex = failure.example
    fewer = {(subsequence_count(ex, o) - 1) // ex["batch_size"] for o in failure.expected}
    return failure.actual in fewer and failure.actual not in failure.expected.values()


def dropped_batch(failure) -> bool:
    """One batch fewer than there should be."""
    if failure.label != "number of batches":
        return False
    counts = failure.expected.values() if isinstance(failure.expected, dict) else [failure.expected]
    return isinstance(failure.actual, int) and failure.actual + 1 in counts


def overlapping(failure) -> bool:
    return failure.label == "subsequence starts" and str(failure.expected).startswith("num_steps")


def interleaved_rows(failure) -> bool:
    """Each column (not each row) of X is consecutive: the stream was laid out as (-1, batch_size)."""
    if "rows are consecutive" not in failure.label:
        return False
    X = actual_tensor(failure)
    return X.shape[0] > 1 and bool((X[1:] - X[:-1] == 1).all())
