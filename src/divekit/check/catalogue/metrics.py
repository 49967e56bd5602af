"""Measures and training aids: BLEU (§6.10 seq2seq), perplexity (§6.4.2), gradient clipping (§6.4.1).

References: :func:`divekit.inference.bleu.book_bleu` (the book's sentence
BLEU), :func:`divekit.tasks.language_model.perplexity` with PyTorch's
cross-entropy, and the book's clipping rule, ``g <- g * min(1, theta / ||g||)``
with the norm taken over all parameters together (``clip_grad_norm_`` differs
from it only by the 1e-6 it adds to the norm).
"""

from __future__ import annotations

import collections
import copy
import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from divekit.check.fit import is_function
from divekit.check.harness import differs, equals, raised, seeded
from divekit.check.model import Check, Concept, Hint, Property, Variant
from divekit.check.strategies import seeds, tensors, values
from divekit.inference.bleu import book_bleu

WORDS = ("a", "b", "c", "d")


@st.composite
def sentences(draw: Any, *, same: bool = False) -> dict[str, Any]:
    k = draw(st.integers(1, 4))
    pred = draw(st.lists(st.sampled_from(WORDS), min_size=k, max_size=8))
    label = pred if same else draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
    return {"pred_seq": " ".join(pred), "label_seq": " ".join(label), "k": k}


def _bleu_value(fn, ex):
    args = (ex["pred_seq"], ex["label_seq"], ex["k"])
    yield Check("bleu", book_bleu(*args), fn(*args), rtol=1e-9, atol=1e-12)


def bleu_variant(pred_seq: str, label_seq: str, k: int, *, penalty: str = "book", clip: bool = True,
                 weight: Callable[[int, int], float] = lambda n, k: 0.5**n,
                 per_label: bool = False) -> float:  # fmt: skip
    """The book's BLEU, or one of the ways it is miswritten (for hints).

    Args:
        penalty: ``"book"`` exp(min(0, 1 - len_label / len_pred)), ``"none"``, or ``"swapped"`` (ratio upside down).
        clip: count a label n-gram at most as often as it occurs in the label.
        weight: the exponent of p_n (the book: 1 / 2^n).
        per_label: divide the matches by the label's n-gram count instead of the prediction's.
    """
    pred, label = pred_seq.split(), label_seq.split()
    ratio = {"book": len(label) / len(pred), "swapped": len(pred) / len(label), "none": 1.0}[penalty]
    score = math.exp(min(0.0, 1 - ratio))
    for n in range(1, k + 1):
        grams = collections.Counter(tuple(label[i:i + n]) for i in range(len(label) - n + 1))
        found = [tuple(pred[i:i + n]) for i in range(len(pred) - n + 1)]
        matches = sum(min(c, grams[g]) for g, c in collections.Counter(found).items()) if clip else sum(
            g in grams for g in found)
        total = len(label) - n + 1 if per_label else len(found)
        score *= math.pow(matches / total, weight(n, k)) if total > 0 else 0.0
    return score


def _bleu_mistake(**mistake: Any) -> Callable[[Any], bool]:
    def matches(failure) -> bool:
        ex = failure.example
        wrong = bleu_variant(ex["pred_seq"], ex["label_seq"], ex["k"], **mistake)
        right = book_bleu(ex["pred_seq"], ex["label_seq"], ex["k"])
        return failure.label == "bleu" and not math.isclose(wrong, right) and isinstance(failure.actual, float) and \
            math.isclose(failure.actual, wrong, rel_tol=1e-9)

    return matches


BLEU = Concept(
    "bleu", "6.10", "seq2seq",
    (Variant("bleu(pred_seq, label_seq, k) -> float: exp(min(0, 1 - len_label / len_pred)) * prod_n p_n^(1/2^n), "
             "sentences as space-separated tokens", lambda obj: is_function(obj, 3),
             (Property("a prediction equal to its label scores 1", sentences(same=True), _bleu_value),
              Property("the score equals the book's BLEU (clipped n-gram precisions, brevity penalty)", sentences(),
                       _bleu_value))),),
    (Hint("brevity penalty missing: multiply by exp(min(0, 1 - len_label / len_pred))", _bleu_mistake(penalty="none")),
     Hint("the brevity penalty's ratio is upside down: exp(min(0, 1 - len_label / len_pred))",
          _bleu_mistake(penalty="swapped")),
     Hint("n-gram matches are not clipped: a label n-gram can be matched only as often as it occurs in the label "
          "(decrement its count after each match)", _bleu_mistake(clip=False)),
     Hint("p_n is weighted by 1/2^n in the book (longer n-grams count more), not by 1/n or 1/k",
          lambda f: any(_bleu_mistake(weight=w)(f) for w in (lambda n, k: 1 / n, lambda n, k: 1 / k))),
     Hint("the precision divides by the prediction's n-grams, len_pred - n + 1, not the label's",
          _bleu_mistake(per_label=True))),
)  # fmt: skip


# ----------------------------------------------------------------------------- perplexity
@st.composite
def predictions(draw: Any, *, uniform: bool = False) -> dict[str, Any]:
    n, V = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    logits = torch.zeros(n, V, dtype=torch.float64) if uniform else draw(tensors((n, V)))
    labels = torch.randint(0, V, (n,), generator=torch.Generator().manual_seed(draw(seeds())))
    return {"Y_hat": logits, "Y": labels}


def perplexity(mean_loss: float) -> float:
    """divekit's reference, imported on first use: ``divekit.tasks`` loads torchvision, seconds of start-up."""
    from divekit.tasks.language_model import perplexity as reference

    return reference(mean_loss)


def _cross_entropy(ex: dict[str, Any]) -> float:
    return F.cross_entropy(ex["Y_hat"], ex["Y"]).item()


def _ppl(fn, ex):
    yield Check("perplexity", perplexity(_cross_entropy(ex)), fn(ex["Y_hat"], ex["Y"]), rtol=1e-9)


def _ppl_of_loss(fn, ex):
    yield Check("perplexity", perplexity(ex["mean_loss"]), fn(ex["mean_loss"]), rtol=1e-9)


def _ppl_mistake(mistake: Callable[[dict[str, Any]], float]) -> Callable[[Any], bool]:
    def matches(failure) -> bool:
        ex = failure.example
        wrong = mistake(ex)
        right = perplexity(_cross_entropy(ex)) if "Y_hat" in ex else perplexity(ex["mean_loss"])
        actual = failure.actual.item() if isinstance(failure.actual, torch.Tensor) else failure.actual
        if math.isclose(wrong, right) or not isinstance(actual, float):
            return False
        return math.isclose(actual, wrong, rel_tol=1e-9)

    return matches


def _label_probabilities(ex: dict[str, Any]) -> torch.Tensor:
    return F.softmax(ex["Y_hat"], dim=1)[torch.arange(len(ex["Y"])), ex["Y"]]


def _loss(ex: dict[str, Any]) -> float:
    return _cross_entropy(ex) if "Y_hat" in ex else ex["mean_loss"]


PERPLEXITY = Concept(
    "perplexity", "6.4.2", "衡量语言模型的标准 困惑度perplexity",
    (Variant("perplexity(Y_hat, Y) -> float: Y_hat logits (n, vocab_size), Y labels (n,); exp of the mean "
             "cross-entropy", lambda obj: is_function(obj, 2),
             (Property("a uniform prediction has perplexity vocab_size", predictions(uniform=True), _ppl),
              Property("perplexity equals exp(mean cross-entropy)", predictions(), _ppl))),
     Variant("perplexity(mean_loss) -> float: exp of the mean cross-entropy (in nats)", lambda obj: is_function(obj, 1),
             (Property("perplexity equals exp(mean_loss)",
                       st.integers(0, 40).map(lambda k: {"mean_loss": k / 4}), _ppl_of_loss),))),
    (Hint("the loss is summed, not averaged, before exp: perplexity is exp of the mean cross-entropy per token",
          _ppl_mistake(lambda ex: math.exp(F.cross_entropy(ex["Y_hat"], ex["Y"], reduction="sum").item()))),
     Hint("perplexity uses e, matching the cross-entropy in nats: math.exp(loss), not 2 ** loss",
          _ppl_mistake(lambda ex: 2 ** _loss(ex))),
     Hint("exp(mean(-log p)) is not 1 / mean(p): average the log-probabilities, then exp",
          _ppl_mistake(lambda ex: 1 / _label_probabilities(ex).mean().item())),
     Hint("the softmax runs over the examples: it must run over the vocabulary, dim=1 (the last axis)",
          _ppl_mistake(lambda ex: math.exp(-F.log_softmax(ex["Y_hat"], dim=0)[torch.arange(len(ex["Y"])),
                                                                                   ex["Y"]].mean().item()))),
     Hint("the exp is taken per token and then averaged: average the loss first, then exp", _ppl_mistake(
         lambda ex: F.cross_entropy(ex["Y_hat"], ex["Y"], reduction="none").exp().mean().item())),
     Hint("exp(-loss) is the mean probability's geometric mean; perplexity is exp(+loss)",
          _ppl_mistake(lambda ex: math.exp(-_loss(ex))))),
)  # fmt: skip


# ----------------------------------------------------------------------------- gradient clipping
@st.composite
def clipping_examples(draw: Any) -> dict[str, Any]:
    widths = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    scale = draw(st.sampled_from((0.1, 1.0, 10.0)))
    frozen = len(widths) > 2 and draw(st.booleans())  # one layer frozen, at least one still training
    return {"layers": widths, "frozen": frozen, "theta": draw(st.sampled_from((0.5, 1.0, 3.0, 100.0))),
            "gradient_scale": scale, "seed": draw(seeds())}  # fmt: skip


def build_net(ex: dict[str, Any]) -> nn.Module:
    """A small MLP whose gradients are set (seeded); with ``frozen``, the first layer does not train."""
    widths = ex["layers"]
    net = seeded(lambda: nn.Sequential(*(nn.Linear(a, b) for a, b in itertools.pairwise(widths))), ex["seed"])
    for index, param in enumerate(net.parameters()):
        param.grad = (values(tuple(param.shape), ex["seed"] + index) * ex["gradient_scale"]).to(param.dtype)
    if ex["frozen"]:
        for param in net[0].parameters():
            param.requires_grad_(False)
            param.grad = None
    return net


def clipped(net: nn.Module, theta: float, *, norm_of: Callable | None = None, per_parameter: bool = False) -> list:
    """The gradients after the book's clipping (or a mistaken one), parameter by parameter (None when frozen)."""
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    total = math.sqrt(sum(float((g**2).sum()) for g in grads)) if norm_of is None else norm_of(grads)
    out = []
    for param in net.parameters():
        if param.grad is None or not param.requires_grad:
            out.append(param.grad)
            continue
        norm = float(param.grad.norm()) if per_parameter else total
        out.append(param.grad * theta / norm if norm > theta else param.grad)
    return out


def _copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with its gradients (deepcopy leaves a parameter's .grad behind)."""
    twin = copy.deepcopy(net)
    for ours, theirs in zip(twin.parameters(), net.parameters()):
        ours.grad = None if theirs.grad is None else theirs.grad.clone()
    return twin


def _clip(fn, ex):
    net = build_net(ex)
    ours = _copy(net)
    fn(ours, ex["theta"])
    for index, (expected, param) in enumerate(zip(clipped(net, ex["theta"]), ours.parameters())):
        # rtol 1e-5: clip_grad_norm_ adds 1e-6 to the norm, and is right too
        yield Check(f"gradient of parameter {index}", expected, param.grad, rtol=1e-5, atol=1e-9)


def _weights_kept(fn, ex):
    net = build_net(ex)
    ours = _copy(net)
    fn(ours, ex["theta"])
    for index, (before, after) in enumerate(zip(net.parameters(), ours.parameters())):
        yield Check(f"parameter {index} (unchanged by clipping)", before.detach(), after.detach())


def _clip_mistake(**mistake: Any) -> Callable[[Any], bool]:
    def matches(failure) -> bool:
        if not failure.label.startswith("gradient of parameter"):
            return False
        net = build_net(failure.example)
        index = int(failure.label.split()[-1])
        theta = failure.example["theta"]
        wrong, right = clipped(net, theta, **mistake)[index], clipped(net, theta)[index]
        return wrong is not None and differs(wrong, right) and equals(failure, wrong)

    return matches


def _clamped(failure) -> bool:
    if not failure.label.startswith("gradient of parameter"):
        return False
    net, theta = build_net(failure.example), failure.example["theta"]
    grad = list(net.parameters())[int(failure.label.split()[-1])].grad
    return grad is not None and equals(failure, grad.clamp(-theta, theta))


def _always_scaled(failure) -> bool:
    if not failure.label.startswith("gradient of parameter"):
        return False
    net, theta = build_net(failure.example), failure.example["theta"]
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    total = math.sqrt(sum(float((g**2).sum()) for g in grads))
    grad = list(net.parameters())[int(failure.label.split()[-1])].grad
    return grad is not None and total < theta and equals(failure, grad * theta / total)


GRAD_CLIPPING = Concept(
    "grad-clipping", "6.4.1", "模型（梯度裁剪）",
    (Variant("grad_clipping(net, theta): rescale the gradients of net's parameters (those with requires_grad) so "
             "their global L2 norm is at most theta", lambda obj: is_function(obj, 2),
             (Property("the gradients' global norm is at most theta afterwards, their direction kept (unchanged when "
                       "already below theta; frozen parameters skipped)", clipping_examples(), _clip),
              Property("the parameters themselves are unchanged", clipping_examples(), _weights_kept))),),
    (Hint("each parameter is clipped by its own norm: the norm is taken over all parameters together",
          _clip_mistake(per_parameter=True)),
     Hint("each entry is clamped to [-theta, theta] (clipping by value): the book rescales the whole gradient",
          _clamped),
     Hint("gradients are scaled up when their norm is below theta: rescale only when norm > theta", _always_scaled),
     Hint("the norm is the square root of the sum of squares: torch.sqrt(sum(torch.sum(p.grad ** 2) ...))",
          _clip_mistake(norm_of=lambda grads: sum(float((g**2).sum()) for g in grads))),
     Hint("a frozen parameter has no gradient: skip parameters without requires_grad (p.grad is None)",
          lambda f: raised(f, TypeError) or raised(f, AttributeError, "NoneType")),
     Hint("the parameters changed: scale param.grad in place (param.grad[:] *= theta / norm), not param",
          lambda f: f.label.startswith("parameter "))),
    aliases=("grad_clipping", "clip_gradients"),
)  # fmt: skip

CONCEPTS = (GRAD_CLIPPING, PERPLEXITY, BLEU)
