"""§6.2 文本预处理 (``Vocab``) and §6.3.2 数据采样 (the two sequence samplers of the book).

``Vocab`` is compared with :class:`divekit.data.text.Vocab`. The samplers
are the book's generator functions, ``seq_data_iter_random(corpus,
batch_size, num_steps)`` and ``seq_data_iter_sequential(...)``; divekit's own
samplers are restartable batch objects with another batch count, so the
expected batches come from the book's semantics, written in
:mod:`divekit.check.catalogue.book_sampling`. The corpus is ``0, 1, ..., n-1``,
so every token says where it came from.
"""

from __future__ import annotations

import collections
from typing import Any

from hypothesis import strategies as st

from divekit.check.catalogue import book_sampling as sampling
from divekit.check.fit import accepts_keyword, is_function, takes_positional
from divekit.check.model import Check, Concept, Hint, Property, Variant
from divekit.data.text import Vocab

WORDS = ("the", "time", "machine", "by", "h", "g", "wells")
RESERVED = ("<pad>", "<bos>", "<eos>")


@st.composite
def vocab_examples(draw: Any) -> dict[str, Any]:
    tokens = draw(st.lists(st.sampled_from(WORDS), max_size=14))
    reserved = draw(st.lists(st.sampled_from(RESERVED), max_size=3, unique=True))
    return {"tokens": tokens, "min_freq": draw(st.integers(0, 3)), "reserved_tokens": reserved}


def _build(cls, ex):
    """Both vocabularies; the learner's gets fresh lists, as its constructor may extend them."""
    reference = Vocab(ex["tokens"], min_freq=ex["min_freq"], reserved_tokens=ex["reserved_tokens"])
    return reference, cls(list(ex["tokens"]), min_freq=ex["min_freq"], reserved_tokens=list(ex["reserved_tokens"]))


def _order(cls, ex):
    reference, ours = _build(cls, ex)
    yield Check("idx_to_token", list(reference.idx_to_token), list(ours.idx_to_token))
    yield Check("len(vocab)", len(reference), len(ours))


def _lookup(cls, ex):
    reference, ours = _build(cls, ex)
    queries = [*dict.fromkeys(ex["tokens"]), "<unk>", "unseen", list(ex["tokens"][:4]), ["unseen", *ex["tokens"][:2]]]
    for query in queries:
        yield Check(f"vocab[{query!r}]", reference[query], ours[query])


def _to_tokens(cls, ex):
    reference, ours = _build(cls, ex)
    indices = list(range(len(reference)))
    for query in [*indices, indices[::-1]]:
        yield Check(f"vocab.to_tokens({query!r})", reference.to_tokens(query), ours.to_tokens(query))


ORDER = "idx_to_token is '<unk>', the reserved tokens, then tokens seen >= min_freq times, most frequent first"
VOCAB_PROPERTIES = (
    Property(ORDER, vocab_examples(), _order),
    Property("vocab[token] and vocab[list of tokens] give the indices; an unseen token gives 0 (<unk>)",
             vocab_examples(), _lookup),
    Property("to_tokens(index) and to_tokens(list of indices) give the tokens back", vocab_examples(), _to_tokens,
             needs=(ORDER,)),
)  # fmt: skip


def _tokens_in_order(ex: dict[str, Any], *, keep, key=None, reserved_last: bool = False) -> list[str]:
    """idx_to_token built as a mistaken Vocab would: ``keep(freq, min_freq)`` and ``key`` for the sort."""
    counts = sorted(collections.Counter(ex["tokens"]).items(), key=key or (lambda item: -item[1]))
    counted = [t for t, freq in counts if keep(freq, ex["min_freq"])]
    reserved = list(ex["reserved_tokens"])
    return ["<unk>", *counted, *reserved] if reserved_last else ["<unk>", *reserved, *counted]


def _order_is(**mistake):
    def matches(failure) -> bool:
        ex = failure.example
        wrong = _tokens_in_order(ex, **mistake)
        right = Vocab(ex["tokens"], min_freq=ex["min_freq"], reserved_tokens=ex["reserved_tokens"]).idx_to_token
        return failure.label == "idx_to_token" and wrong != right and list(failure.actual) == wrong

    return matches


def _shifted_index(failure) -> bool:
    if not failure.label.startswith("vocab[") or not isinstance(failure.expected, int):
        return False
    return failure.actual == failure.expected + 1


VOCAB_HINTS = (
    Hint("tokens must be sorted most frequent first: sorted(..., key=lambda x: x[1], reverse=True)",
         _order_is(keep=lambda f, m: f >= m, key=lambda item: item[1])),
    Hint("a token seen exactly min_freq times is kept: drop a token only when freq < min_freq",
         _order_is(keep=lambda f, m: f > m)),
    Hint("'<unk>' and the reserved tokens come first, before the counted tokens",
         _order_is(keep=lambda f, m: f >= m, reserved_last=True)),
    Hint("token_to_idx is off by one: after appending a token its index is len(self.idx_to_token) - 1",
         _shifted_index),
    Hint("an unseen token must map to <unk>: use self.token_to_idx.get(token, self.unk) instead of indexing the dict",
         lambda f: isinstance(f.error, KeyError)),
    Hint("self.unk is used but never defined: give the class an unk (the index of '<unk>', 0)",
         lambda f: isinstance(f.error, AttributeError) and "unk" in str(f.error)),
)  # fmt: skip

def _vocab_class(obj: Any) -> bool:
    return isinstance(obj, type) and takes_positional(obj, 1) and all(
        accepts_keyword(obj, name) for name in ("min_freq", "reserved_tokens"))


VOCAB = Concept(
    "vocab", "6.2", "文本预处理",
    (Variant("Vocab(tokens, min_freq=0, reserved_tokens=None) with len(vocab), vocab[tokens], vocab.to_tokens(indices) "
             "and idx_to_token", _vocab_class, VOCAB_PROPERTIES),),
    VOCAB_HINTS,
    aliases=("Vocab",),
)  # fmt: skip


# ----------------------------------------------------------------------------- samplers
SECTION, TITLE = "6.3.2", "数据采样（拆分序列）"


@st.composite
def sampler_examples(draw: Any, *, several: bool = False) -> dict[str, Any]:
    """Sizes with two batches at any offset (``several``: three subsequences or more, even with one lost).

    Two batches, so that a sampler which loses one still yields one to look at.
    """
    batch_size, num_steps = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    smallest = (max(batch_size, 3) + 2 if several else 2 * batch_size + 1) * num_steps + 1
    n = draw(st.integers(smallest, smallest + 12))
    return {"corpus": list(range(n)), "batch_size": batch_size, "num_steps": num_steps,
            "seed": draw(st.integers(0, 99))}  # fmt: skip


def _shapes(fn, ex):
    batches = sampling.collect(fn, ex)
    for index, (X, Y) in enumerate(batches):
        yield Check(f"batch {index}: X shape", (ex["batch_size"], ex["num_steps"]), tuple(X.shape))
        yield Check(f"batch {index}: Y shape", (ex["batch_size"], ex["num_steps"]), tuple(Y.shape))
        yield Check(f"batch {index}: X rows are consecutive tokens", sampling.windows(X), X)
        yield Check(f"batch {index}: Y (X shifted by one token)", X + 1, Y)


WINDOWS = "every batch is (batch_size, num_steps), rows are consecutive tokens, Y is X shifted by one token"


def _random_layout(fn, ex):
    batches = sampling.collect(fn, ex)
    starts = [int(s) for X, _ in batches for s in X[:, 0]]
    ns = ex["num_steps"]
    yield Check("subsequence starts", "all different", f"{starts}", ok=len(set(starts)) == len(starts))
    yield Check("subsequence starts", f"num_steps = {ns} apart", f"{sorted(starts)}",
                ok=len({s % ns for s in starts}) <= 1)
    counts = sampling.random_counts(ex, starts)
    yield Check("number of batches", counts, len(batches), ok=len(batches) in counts.values())


def _sequential_batches(fn, ex):
    batches = sampling.collect(fn, ex)
    offset = int(batches[0][0][0, 0]) if batches else 0
    yield Check("offset (first token of the epoch)", f"0 <= offset <= num_steps = {ex['num_steps']}", f"{offset}",
                ok=0 <= offset <= ex["num_steps"])
    expected = sampling.book_sequential(ex["corpus"], ex["batch_size"], ex["num_steps"], offset)
    yield Check("number of batches", len(expected), len(batches))
    for index, ((X, Y), (eX, eY)) in enumerate(zip(batches, expected)):
        yield Check(f"batch {index}: X", eX, X)
        yield Check(f"batch {index}: Y", eY, Y)


def _epochs(*, shuffled: bool):
    def checks(fn, ex):
        epochs = [sampling.collect(fn, ex | {"seed": ex["seed"] + k}) for k in range(sampling.EPOCHS)]
        offsets = [min(int(s) for X, _ in e for s in X[:, 0]) % ex["num_steps"] for e in epochs if e]
        if ex["num_steps"] > 1:
            yield Check(f"offsets over {sampling.EPOCHS} epochs", "more than one offset", f"{sorted(set(offsets))}",
                        ok=len(set(offsets)) > 1)
        if shuffled:
            orders = [[int(s) for X, _ in e for s in X[:, 0]] for e in epochs]
            yield Check(f"subsequence order over {sampling.EPOCHS} epochs", "shuffled in some epoch",
                        "always increasing", ok=any(o != sorted(o) for o in orders))

    return checks


RANDOM_PROPERTIES = (
    Property(WINDOWS, sampler_examples(), _shapes),
    Property("subsequences do not overlap, start num_steps apart, and every batch the corpus allows is produced",
             sampler_examples(), _random_layout, needs=(WINDOWS,)),
    Property("each epoch (seed) starts at a random offset and visits the subsequences in a random order",
             sampler_examples(several=True), _epochs(shuffled=True), needs=(WINDOWS,)),
)  # fmt: skip
SEQUENTIAL_PROPERTIES = (
    Property(WINDOWS, sampler_examples(), _shapes),
    Property("the batches are the book's: batch_size rows of the stream, each batch continuing the last one",
             sampler_examples(), _sequential_batches, needs=(WINDOWS,)),
    Property("each epoch (seed) starts at a random offset", sampler_examples(), _epochs(shuffled=False),
             needs=(WINDOWS,)),
)  # fmt: skip

SAMPLER_HINTS = (
    Hint("Y must be X shifted by one token: Y = corpus[j + 1: j + 1 + num_steps]", sampling.same_as_x),
    Hint("the last subsequence is dropped: there are (len(corpus) - 1 - offset) // num_steps subsequences",
         sampling.dropped_subsequence),
    Hint("the last batch is dropped: range(0, num_batches * batch_size, batch_size) covers every batch",
         sampling.dropped_batch),
    Hint("subsequences overlap: start them num_steps apart, range(0, num_subseqs * num_steps, num_steps)",
         sampling.overlapping),
    Hint("the subsequences are never shuffled: random.shuffle(initial_indices) once per epoch",
         lambda f: f.label.startswith("subsequence order")),
    Hint("the offset is the same every epoch: draw it with random.randint at the start of each epoch",
         lambda f: f.label.startswith("offsets over")),
    Hint("the rows are interleaved: reshape the stream to (batch_size, -1) so each row is one stretch of text",
         sampling.interleaved_rows),
)  # fmt: skip



def _sampler(function: str, behaviour: str, properties: tuple[Property, ...]) -> Concept:
    signature = f"{function}(corpus, batch_size, num_steps): yields (X, Y), each (batch_size, num_steps); {behaviour}"
    return Concept(function.replace("_", "-"), SECTION, TITLE,
                   (Variant(signature, lambda obj: is_function(obj, 3), properties),), SAMPLER_HINTS,
                   aliases=(function,))  # fmt: skip


SEQ_DATA_ITER_RANDOM = _sampler("seq_data_iter_random", "random offset, shuffled non-overlapping subsequences",
                                RANDOM_PROPERTIES)
SEQ_DATA_ITER_SEQUENTIAL = _sampler("seq_data_iter_sequential", "random offset, batch i + 1 continues batch i "
                                    "row by row", SEQUENTIAL_PROPERTIES)  # fmt: skip

CONCEPTS = (VOCAB, SEQ_DATA_ITER_RANDOM, SEQ_DATA_ITER_SEQUENTIAL)
