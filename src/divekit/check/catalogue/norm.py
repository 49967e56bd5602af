"""§2.6 批量归一化层: the book's ``batch_norm`` function and its ``BatchNorm(num_features, num_dims)`` layer.

Reference: :mod:`divekit.nn.norm`, a twin of ``nn.BatchNorm1d/2d``: the
normalisation uses the biased batch variance, the running variance the
unbiased one, as PyTorch does. ``momentum`` may follow PyTorch's convention
(the weight of the new batch) or the book's (the weight of the old value);
the function's convention is recognised from the running mean it returns.

The book's function decides training against evaluation with
``torch.is_grad_enabled()``; evaluation is therefore checked under
``torch.no_grad()`` (and with ``training=False`` for a function that takes it).
"""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st

from divekit.check.fit import accepts_keyword, is_function, is_module_class
from divekit.check.harness import ModuleSubject, equals, gradient_checks, missing_gradient, raised, seeded
from divekit.check.engine import verdict
from divekit.check.model import Check, Concept, Hint, Property, Variant
from divekit.check.strategies import seeds, tensors
from divekit.nn.norm import BatchNorm, batch_norm

SECTION, TITLE = "2.6", "批量归一化层"
EPS = 1e-5
STAT_NAMES = {"mean": ("running_mean", "moving_mean"), "var": ("running_var", "moving_var")}


@st.composite
def inputs(draw: Any) -> tuple[int, ...]:
    """An input shape: ``(N, C)`` with N >= 2, or ``(N, C, H, W)`` with N * H * W >= 2."""
    C = draw(st.integers(1, 3))
    if draw(st.booleans()):
        return draw(st.integers(2, 4)), C
    N, H, W = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (N, C, H, W) if N * H * W >= 2 else (2, C, H, W)


@st.composite
def function_examples(draw: Any) -> dict[str, Any]:
    shape = draw(inputs())
    stat = (1, shape[1]) + (1,) * (len(shape) - 2)  # the book's shapes: (1, C) or (1, C, 1, 1)
    return {"X": draw(tensors(shape)), "gamma": draw(tensors(stat)), "beta": draw(tensors(stat)),
            "moving_mean": draw(tensors(stat)), "moving_var": draw(tensors(stat, low=1, high=6)),
            "eps": EPS, "momentum": draw(st.sampled_from((0.1, 0.2)))}  # fmt: skip


def reference(ex: dict[str, Any], *, training: bool, momentum: float | None = None) -> tuple[torch.Tensor, ...]:
    """``(Y, moving_mean, moving_var)`` of the reference, with PyTorch's ``momentum``; the inputs are not changed."""
    mean, var = ex["moving_mean"].flatten().clone(), ex["moving_var"].flatten().clone()
    momentum = ex["momentum"] if momentum is None else momentum
    Y = batch_norm(ex["X"], ex["gamma"], ex["beta"], mean, var, eps=ex["eps"], momentum=momentum, training=training)
    return Y, mean, var


def call(fn: Any, ex: dict[str, Any], *, training: bool) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """The learner's ``(Y, moving_mean, moving_var)``: returned by the function or updated in place."""
    ex = ex | {"moving_mean": ex["moving_mean"].clone(), "moving_var": ex["moving_var"].clone()}  # updated in place?
    args = [ex[k] for k in ("X", "gamma", "beta", "moving_mean", "moving_var", "eps", "momentum")]
    extra = {"training": training} if accepts_keyword(fn, "training") else {}
    if training:
        out = fn(*args, **extra)
    else:
        with torch.no_grad():
            out = fn(*args, **extra)
    if isinstance(out, (tuple, list)) and len(out) == 3:
        return out[0], out[1], out[2]
    return out, ex["moving_mean"], ex["moving_var"]


def _flat(value: Any) -> Any:
    return value.detach().flatten() if isinstance(value, torch.Tensor) else value


def _train_output(fn, ex):
    yield Check("Y", reference(ex, training=True)[0], call(fn, ex, training=True)[0])


def _running(fn, ex):
    _, mean, var = call(fn, ex, training=True)
    mean, var = _flat(mean), _flat(var)
    # PyTorch's momentum weighs the new batch, the book's the old value: either is right if used throughout
    options = [reference(ex, training=True, momentum=m)[1:] for m in (ex["momentum"], 1 - ex["momentum"])]
    same = [_agrees(m, mean) + _agrees(v, var) for m, v in options]
    expected_mean, expected_var = options[same.index(max(same))]
    yield Check("moving_mean", expected_mean, mean)
    yield Check("moving_var", expected_var, var)


def _agrees(expected: torch.Tensor, actual: Any) -> int:
    return int(verdict(Check("", expected, actual)) is None)


def _eval_output(fn, ex):
    expected, mean, var = reference(ex, training=False)
    Y, new_mean, new_var = call(fn, ex, training=False)
    yield Check("Y", expected, Y)
    yield Check("moving_mean (unchanged in evaluation)", mean, _flat(new_mean))
    yield Check("moving_var (unchanged in evaluation)", var, _flat(new_var))


def _function_gradients(fn, ex):
    def ours(**kw):
        return call(fn, ex | kw, training=True)[0]

    yield from gradient_checks(lambda **kw: reference(ex | kw, training=True)[0], ours,
                               {k: ex[k] for k in ("X", "gamma", "beta")}, ("X", "gamma", "beta"))  # fmt: skip


TRAIN = "training: the output normalises with the batch statistics"
EVAL = "evaluation: the output uses the moving statistics"
FUNCTION_PROPERTIES = (
    Property(TRAIN, function_examples(), _train_output),
    Property("training updates moving_mean and moving_var as nn.BatchNorm does (unbiased variance)",
             function_examples(), _running),
    Property(EVAL, function_examples(), _eval_output),
    Property("gradients with respect to X, gamma and beta equal the reference's", function_examples(),
             _function_gradients, needs=(TRAIN,)),
)  # fmt: skip


# ----------------------------------------------------------------------------- the layer
@st.composite
def layer_examples(draw: Any) -> dict[str, Any]:
    shape = draw(inputs())
    return {"num_features": shape[1], "num_dims": len(shape), "X": draw(tensors(shape)),
            "X2": draw(tensors(shape)), "seed": draw(seeds())}  # fmt: skip


def _layers(subject: ModuleSubject, ex: dict[str, Any]) -> tuple[BatchNorm, torch.nn.Module]:
    ref = seeded(lambda: BatchNorm(ex["num_features"], ex["num_dims"]), ex["seed"])
    return ref, subject.build(ref, ex["num_features"], ex["num_dims"])


def statistic(module: torch.nn.Module, which: str) -> Any:
    """The layer's running mean or variance, under PyTorch's or the book's name, flattened."""
    for name in STAT_NAMES[which]:
        value = getattr(module, name, None)
        if isinstance(value, torch.Tensor):
            return value.detach().flatten()
    return f"no attribute {' or '.join(STAT_NAMES[which])}"


def _layer_train(subject, ex):
    ref, ours = _layers(subject, ex)
    yield Check("Y", ref(ex["X"]), ours(ex["X"].clone()))


def _layer_running(subject, ex):
    ref, ours = _layers(subject, ex)
    for X in (ex["X"], ex["X2"]):
        ref(X)
        ours(X.clone())
    yield Check("running mean after two training steps", ref.running_mean, statistic(ours, "mean"))
    yield Check("running variance after two training steps", ref.running_var, statistic(ours, "var"))


def _layer_eval(subject, ex):
    ref, ours = _layers(subject, ex)
    ref(ex["X"]), ours(ex["X"].clone())
    ref.eval(), ours.eval()
    with torch.no_grad():
        yield Check("Y in evaluation, after one training step", ref(ex["X2"]), ours(ex["X2"].clone()))


def _layer_gradients(subject, ex):
    ref, ours = _layers(subject, ex)
    yield from gradient_checks(lambda X: ref(X), lambda X: ours(X), {"X": ex["X"]}, ("X",), seed=ex["seed"],
                               modules=(ref, ours, subject.match))  # fmt: skip


LAYER_TRAIN = "training: the output equals nn.BatchNorm's with the same gamma and beta"
LAYER_PROPERTIES = (
    Property(LAYER_TRAIN, layer_examples(), _layer_train),
    Property("the running statistics after two training steps equal nn.BatchNorm's (momentum 0.1, unbiased "
             "variance)", layer_examples(), _layer_running),
    Property("evaluation (model.eval(), torch.no_grad()) normalises with the running statistics", layer_examples(),
             _layer_eval),
    Property("gradients with respect to X, gamma and beta equal nn.BatchNorm's", layer_examples(), _layer_gradients,
             needs=(LAYER_TRAIN,)),
)  # fmt: skip


# ----------------------------------------------------------------------------- known mistakes
def _batch_stats(X: torch.Tensor, dims: tuple[int, ...], *, unbiased: bool = False) -> tuple[torch.Tensor, ...]:
    mean = X.mean(dim=dims, keepdim=True)
    return mean, X.var(dim=dims, keepdim=True, unbiased=unbiased)


def _normalised_with(failure, make_stats, *, eps_inside: bool = True) -> bool:
    """The learner's Y equals gamma * (X - mean) / sqrt(var + eps) + beta with ``make_stats``' mean and var."""
    ex = failure.example
    if "gamma" not in ex or failure.label != "Y":
        return False
    X = ex["X"]
    mean, var = make_stats(X)
    scale = torch.sqrt(var + ex["eps"]) if eps_inside else torch.sqrt(var) + ex["eps"]
    return equals(failure, ex["gamma"] * (X - mean) / scale + ex["beta"])


def _all_but_channels(X: torch.Tensor) -> tuple[int, ...]:
    return tuple(d for d in range(X.dim()) if d != 1)


def _biased_running_var(failure) -> bool:
    ex = failure.example
    if "moving_var" not in failure.label and "running variance" not in failure.label:
        return False
    if "gamma" in ex:
        X, momentum = ex["X"], ex["momentum"]
        var = _batch_stats(X, _all_but_channels(X))[1].flatten()
        old = ex["moving_var"].flatten()
        candidates = [(1 - m) * old + m * var for m in (momentum, 1 - momentum)]
    else:
        candidates = [_layer_biased_var(ex)]
    return any(equals(failure, c) for c in candidates)


def _layer_biased_var(ex: dict[str, Any]) -> torch.Tensor:
    running = torch.ones(ex["num_features"], dtype=torch.float64)
    for X in (ex["X"], ex["X2"]):
        running = 0.9 * running + 0.1 * _batch_stats(X, _all_but_channels(X))[1].flatten()
    return running


def _stats_unchanged(failure) -> bool:
    ex = failure.example
    if failure.label.startswith("Y in evaluation"):  # evaluated with the initial statistics
        fresh = seeded(lambda: BatchNorm(ex["num_features"], ex["num_dims"]), ex["seed"]).eval()
        return equals(failure, fresh(ex["X2"]))
    if "gamma" in ex and failure.label in ("moving_mean", "moving_var"):
        return equals(failure, ex[failure.label].flatten())
    start = torch.zeros(ex.get("num_features", 0)) if "mean" in failure.label else torch.ones(ex.get("num_features", 0))
    return failure.label.startswith("running") and equals(failure, start)


def _eval_uses_batch(failure) -> bool:
    ex = failure.example
    if "gamma" in ex:
        if failure.label.endswith("(unchanged in evaluation)"):  # evaluation ran the training branch
            return True
        return failure.prop == EVAL and failure.label == "Y" and equals(failure, reference(ex, training=True)[0])
    if not failure.label.startswith("Y in evaluation"):
        return False
    fresh = seeded(lambda: BatchNorm(ex["num_features"], ex["num_dims"]), ex["seed"])  # in training mode
    return equals(failure, fresh(ex["X2"]))


def _reduced_over_batch_only(failure) -> bool:
    X = failure.example["X"]
    spatial = X.dim() == 4 and X.shape[2] * X.shape[3] > 1  # with H = W = 1 the two are the same
    return spatial and _normalised_with(failure, lambda X: _batch_stats(X, (0,)))


HINTS = (
    Hint("running variance uses the biased estimate: nn.BatchNorm updates it with the unbiased batch variance "
         "(divide by m - 1; m values per channel), while the normalisation itself uses the biased one",
         _biased_running_var),
    Hint("the moving statistics never change: return the updated moving_mean and moving_var (the book returns "
         "Y, moving_mean.data, moving_var.data) and assign them back in the layer", _stats_unchanged),
    Hint("the normalisation divides by the unbiased variance (torch.var's default): use the biased one, "
         "((X - mean) ** 2).mean()",
         lambda f: _normalised_with(f, lambda X: _batch_stats(X, _all_but_channels(X), unbiased=True))),
    Hint("eps belongs inside the square root: (X - mean) / torch.sqrt(var + eps)",
         lambda f: _normalised_with(f, lambda X: _batch_stats(X, _all_but_channels(X)), eps_inside=False)),
    Hint("for a 4-D input the statistics are taken over N, H and W (dim=(0, 2, 3), keepdim=True), not over N alone",
         _reduced_over_batch_only),
    Hint("the statistics lost their dimensions: use keepdim=True so a (1, C, 1, 1) mean lines up with the channels",
         lambda f: raised(f, RuntimeError, "must match") and f.example["X"].dim() == 4),
    Hint("evaluation still uses the batch's statistics: when not training (torch.no_grad() in the book, "
         "self.training in a layer) normalise with the moving mean and variance", _eval_uses_batch),
    missing_gradient("no gradient reaches gamma or beta: they must be nn.Parameter and used as themselves "
                     "(not .data)", parameters=True),
)  # fmt: skip

BATCH_NORM = Concept(
    "batch-norm", SECTION, TITLE,
    (Variant("batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum) -> Y or (Y, moving_mean, "
             "moving_var): X (N, C) or (N, C, H, W); gamma, beta, moving statistics (1, C) or (1, C, 1, 1); "
             "evaluation under torch.no_grad()", lambda obj: is_function(obj, 7), FUNCTION_PROPERTIES),
     Variant("BatchNorm(num_features, num_dims), the book's layer: gamma, beta and the moving statistics "
             "of a (N, C) input (num_dims=2) or (N, C, H, W) input (num_dims=4)", lambda obj: is_module_class(obj, 2),
             LAYER_PROPERTIES, ModuleSubject)),
    HINTS,
    aliases=("batch_norm", "BatchNorm"),
)  # fmt: skip

CONCEPTS = (BATCH_NORM,)
