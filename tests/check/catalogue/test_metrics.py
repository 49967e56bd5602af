"""BLEU, perplexity and gradient clipping: the book's code passes, and each classic slip is named."""

from __future__ import annotations

import collections
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from divekit.check.catalogue.metrics import bleu_variant, build_net, clipped
from divekit.inference.bleu import book_bleu
from divekit.tasks.language_model import perplexity as reference_perplexity
from tests.check.support import Case, case_id, verify


def bleu(pred_seq, label_seq, k):
    """The book's bleu."""
    pred_tokens, label_tokens = pred_seq.split(" "), label_seq.split(" ")
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    score = math.exp(min(0, 1 - len_label / len_pred))
    for n in range(1, k + 1):
        num_matches, label_subs = 0, collections.defaultdict(int)
        for i in range(len_label - n + 1):
            label_subs[" ".join(label_tokens[i: i + n])] += 1
        for i in range(len_pred - n + 1):
            if label_subs[" ".join(pred_tokens[i: i + n])] > 0:
                num_matches += 1
                label_subs[" ".join(pred_tokens[i: i + n])] -= 1
        score *= math.pow(num_matches / (len_pred - n + 1), math.pow(0.5, n))
    return score


def bleu_with(*, penalty=True, clip=True, weight=lambda n, k: math.pow(0.5, n), swapped=False):
    def score_of(pred_seq, label_seq, k):
        pred, label = pred_seq.split(" "), label_seq.split(" ")
        ratio = len(pred) / len(label) if swapped else len(label) / len(pred)
        score = math.exp(min(0, 1 - ratio)) if penalty else 1.0
        for n in range(1, k + 1):
            grams = collections.Counter(" ".join(label[i:i + n]) for i in range(len(label) - n + 1))
            matches = 0
            for i in range(len(pred) - n + 1):
                gram = " ".join(pred[i:i + n])
                if grams[gram] > 0:
                    matches += 1
                    if clip:
                        grams[gram] -= 1
            score *= math.pow(matches / (len(pred) - n + 1), weight(n, k))
        return score

    return score_of


bleu_no_penalty = bleu_with(penalty=False)
bleu_no_penalty.__name__ = "bleu_no_penalty"
bleu_unclipped = bleu_with(clip=False)
bleu_unclipped.__name__ = "bleu_unclipped"
bleu_geometric_mean = bleu_with(weight=lambda n, k: 1 / k)
bleu_geometric_mean.__name__ = "bleu_geometric_mean"
bleu_penalty_upside_down = bleu_with(swapped=True)
bleu_penalty_upside_down.__name__ = "bleu_penalty_upside_down"


def perplexity(Y_hat, Y):
    return math.exp(F.cross_entropy(Y_hat, Y).item())


def perplexity_summed(Y_hat, Y):
    return math.exp(F.cross_entropy(Y_hat, Y, reduction="sum").item())


def perplexity_base_two(Y_hat, Y):
    return 2 ** F.cross_entropy(Y_hat, Y).item()


def perplexity_of_probabilities(Y_hat, Y):
    p = F.softmax(Y_hat, dim=1)[torch.arange(len(Y)), Y]
    return 1 / p.mean().item()


def perplexity_exp_each(Y_hat, Y):
    return torch.exp(F.cross_entropy(Y_hat, Y, reduction="none")).mean().item()


def grad_clipping(net, theta):
    """The book's grad_clipping."""
    if isinstance(net, nn.Module):
        params = [p for p in net.parameters() if p.requires_grad]
    else:
        params = net.params
    norm = torch.sqrt(sum(torch.sum((p.grad ** 2)) for p in params))  # noqa: UP034 - the book's spelling
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


def clip_each_parameter(net, theta):
    for p in net.parameters():
        if p.requires_grad:
            norm = torch.sqrt(torch.sum(p.grad ** 2))
            if norm > theta:
                p.grad[:] *= theta / norm


def clip_by_value(net, theta):
    for p in net.parameters():
        if p.requires_grad:
            p.grad.clamp_(-theta, theta)


def clip_always(net, theta):
    params = [p for p in net.parameters() if p.requires_grad]
    norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
    for param in params:
        param.grad[:] *= theta / norm


def clip_without_sqrt(net, theta):
    params = [p for p in net.parameters() if p.requires_grad]
    norm = sum(torch.sum(p.grad ** 2) for p in params)
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


def clip_all_parameters(net, theta):
    params = list(net.parameters())
    norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
    if norm > theta:
        for param in params:
            param.grad[:] *= theta / norm


def clip_the_weights(net, theta):
    params = [p for p in net.parameters() if p.requires_grad]
    norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
    if norm > theta:
        with torch.no_grad():
            for param in params:
                param *= theta / norm


def clip_grad_norm(net, theta):
    torch.nn.utils.clip_grad_norm_(net.parameters(), theta)


CASES = [
    Case("bleu", book_bleu),
    Case("bleu", bleu),
    Case("bleu", bleu_no_penalty, "brevity penalty missing", "no brevity penalty"),
    Case("bleu", bleu_unclipped, "not clipped", "matches not clipped"),
    Case("bleu", bleu_geometric_mean, "1/2^n", "weights 1/k instead of 1/2^n"),
    Case("bleu", bleu_penalty_upside_down, "upside down", "len_pred / len_label in the penalty"),
    Case("perplexity", reference_perplexity),
    Case("perplexity", perplexity),
    Case("perplexity", perplexity_summed, "summed, not averaged", "exp of the summed loss"),
    Case("perplexity", perplexity_base_two, "not 2 ** loss", "2 ** loss"),
    Case("perplexity", perplexity_of_probabilities, "not 1 / mean(p)", "1 / mean(p)"),
    Case("perplexity", perplexity_exp_each, "per token and then averaged", "mean of exp(loss)"),
    Case("grad-clipping", clip_grad_norm),
    Case("grad-clipping", grad_clipping),
    Case("grad-clipping", clip_each_parameter, "by its own norm", "per-parameter norm"),
    Case("grad-clipping", clip_by_value, "clipping by value", "clamps each entry"),
    Case("grad-clipping", clip_always, "scaled up", "scales even below theta"),
    Case("grad-clipping", clip_without_sqrt, "square root", "sum of squares as the norm"),
    Case("grad-clipping", clip_all_parameters, "frozen parameter", "frozen parameters not skipped"),
    Case("grad-clipping", clip_the_weights, "parameters changed", "scales the weights"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_checker_verdict(case):
    verify(case)


@pytest.mark.parametrize(("pred", "label", "k"), [("a b c d", "a b c d", 2), ("a a a", "a b", 1),
                                                  ("b a d", "a b c d e", 3)])  # fmt: skip
def test_hint_model_of_bleu_without_mistakes_is_the_reference(pred, label, k):
    assert bleu_variant(pred, label, k) == pytest.approx(book_bleu(pred, label, k), rel=1e-12)


def test_clipping_reference_is_clip_grad_norm():
    example = {"layers": [3, 2, 2], "frozen": True, "theta": 0.5, "gradient_scale": 10.0, "seed": 3}
    net = build_net(example)
    expected = clipped(net, 0.5)
    torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 0.5)
    for ours, param in zip(expected, net.parameters()):
        if ours is None:
            assert param.grad is None
        else:
            torch.testing.assert_close(ours, param.grad, rtol=1e-5, atol=0)
