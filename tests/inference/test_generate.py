"""Text generation: warm-up, greedy decoding, sampling, streaming (notes §6.4.1)."""

from __future__ import annotations

import pytest
import torch

from divekit.data.text import Vocab
from divekit.errors import CheckpointError, ConfigError
from divekit.models import create_model
from divekit.inference import generate
from divekit.inference.generate import BidirectionalWarning, TextGenerator, pick_next


@pytest.fixture
def generator():
    torch.manual_seed(0)
    vocab = Vocab(list("the time traveller"))
    model = create_model("gru-lm", vocab_size=len(vocab), num_hiddens=12).eval()
    return TextGenerator(model, vocab, "char", "letters")


def test_pick_next_greedy_top_k_and_temperature():
    logits = torch.tensor([0.0, 3.0, 1.0, 2.9])
    assert pick_next(logits) == 1
    g = torch.Generator().manual_seed(0)
    assert {pick_next(logits, temperature=1.0, top_k=1, generator=g) for _ in range(20)} == {1}
    top2 = {pick_next(logits, temperature=1.0, top_k=2, generator=g) for _ in range(200)}
    assert top2 == {1, 3}
    cold = [pick_next(logits, temperature=0.05, generator=g) for _ in range(50)]
    assert cold.count(1) > 40  # a low temperature is nearly greedy
    with pytest.raises(ConfigError):
        pick_next(logits, temperature=-1.0)
    with pytest.raises(ConfigError):
        pick_next(logits, temperature=1.0, top_k=0)


def _step_by_step(gen, prefix, length):
    """Reference: feed every token on its own, as the book's predict does."""
    ids = [gen.vocab[t] for t in gen.tokens(prefix)]
    state = None
    for i in ids:
        logits, state = gen.model(torch.tensor([[i]]), state)
    out = []
    for _ in range(length):
        i = int(logits[0, -1].argmax())
        out.append(gen.vocab.idx_to_token[i])
        logits, state = gen.model(torch.tensor([[i]]), state)
    return out


def test_warm_up_in_one_pass_equals_feeding_tokens_one_by_one(generator):
    assert list(generator.stream("Time  traveller!", length=15)) == _step_by_step(generator, "time traveller", 15)


def test_stream_yields_lazily_and_complete_joins(generator):
    stream = generator.stream("time", length=3)
    assert isinstance(next(stream), str)
    text = generator.complete("The Time", length=5)
    assert text.startswith("the time") and len(text) == len("the time") + 5


def test_seeded_sampling_repeats(generator):
    a = generator.complete("time", length=20, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = generator.complete("time", length=20, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert a == b


def test_empty_prefix_and_bidirectional_warning(generator):
    with pytest.raises(ConfigError, match="no tokens"):
        list(generator.stream("123 !", length=3))
    model = create_model("lstm-lm", vocab_size=len(generator.vocab), num_hiddens=4, bidirectional=True)
    with pytest.warns(BidirectionalWarning, match="bidirectional"):
        TextGenerator(model, generator.vocab)


@pytest.mark.parametrize("temperature", [float("nan"), float("inf"), -float("inf"), -1.0, -1e-300, True, "0.5"])
def test_impossible_temperatures_are_refused(temperature):
    with pytest.raises(ConfigError, match="temperature must be a finite number >= 0"):
        generate.check_sampling(temperature=temperature)


@pytest.mark.parametrize("top_k", [0, -3, 2.5, True, "5"])
def test_impossible_top_k_is_refused(top_k):
    with pytest.raises(ConfigError, match="top_k must be an integer >= 1"):
        generate.check_sampling(temperature=1.0, top_k=top_k)


@pytest.mark.parametrize("temperature", [1e-30, 1e-45, 1e-300, 5e-324])
def test_a_tiny_temperature_is_greedy_instead_of_overflowing(temperature):
    """Before: logits / 1e-45 overflowed to inf, softmax gave NaN, and multinomial raised a RuntimeError."""
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.0, 3.0, 1.0, 2.9])
    assert {pick_next(logits, temperature=temperature, generator=g) for _ in range(50)} == {1}
    tied = torch.tensor([5.0, 1.0, 5.0, -2.0])
    assert {pick_next(tied, temperature=temperature, generator=g) for _ in range(100)} == {0, 2}  # ties stay ties


def test_huge_logits_and_temperatures_stay_finite():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([3e38, -3e38, 0.0])
    assert pick_next(logits, temperature=1.0, generator=g) == 0
    assert {pick_next(logits, temperature=1e308, generator=g) for _ in range(200)} == {0, 1, 2}  # near uniform


def test_non_finite_scores_are_a_corrupt_model():
    with pytest.raises(CheckpointError, match="not finite"):
        pick_next(torch.tensor([0.0, float("nan")]), temperature=1.0)


@pytest.mark.parametrize("options", [{"temperature": float("nan")}, {"temperature": -1.0}, {"top_k": 0},
                                     {"length": -1}])  # fmt: skip
def test_stream_checks_everything_at_the_call_before_any_token(generator, options):
    """A generator body runs only at the first next(): the checks must not wait for it."""
    with pytest.raises(ConfigError):
        generator.stream("time", **{"length": 5, "temperature": 1.0, **options})
    with pytest.raises(ConfigError, match="no tokens after cleaning"):
        generator.stream("1234 !!", length=5)
