"""Export a run's model to ONNX, checked by onnxruntime against PyTorch before any file is written.

What each task family becomes (every graph takes and returns plain tensors, batch size dynamic):

- ``classification``: ``images (N, C, H, W)`` floats in [0, 1] -> ``logits (N, K)``;
- ``regression``: ``features (N, tau)`` -> ``prediction (N, 1)``;
- ``language-model``: one step, ``tokens (N, 1)`` and the recurrent state in -> ``logits (N, 1, V)``
  and the new state out, so text can be generated outside PyTorch, a token at a time;
- ``seq2seq``: two graphs. The *encoder* maps ``src (N, S)`` and ``src_valid_lens (N,)`` to the
  decoder's initial state (``decoder.init_state`` folded in). The *decoder* either takes one token
  and the state and returns the logits and the new state (recurrent decoders), or, for a decoder
  whose state does not change (a Transformer without its key-value cache), takes the whole prefix
  ``tokens (N, T)`` and the state and returns the logits of every position.

Before a file is written, onnxruntime runs each graph on random inputs at batch sizes other than
the traced one, and the largest absolute difference from PyTorch's outputs must stay under
``atol`` (1e-4 in float32). A model that cannot be exported raises one line saying why.
Each file carries its facts (task, input and state names, class names...) as ONNX metadata
(``divekit`` key, JSON).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io as _io
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from divekit.errors import ConfigError
from divekit.io import atomic_write_bytes
from divekit.runs.load import LoadedRun, load_run

ATOL = 1e-4
OPSET = 17
TRACE_BATCH, CHECK_BATCHES = 2, (1, 5)  # traced at one size, checked at others: the batch dimension is dynamic


@dataclass
class Graph:
    """One ONNX graph to export: a module over plain tensors, and how to make inputs for it.

    Attributes:
        role: ``model``, ``encoder`` or ``decoder`` (the file's suffix for seq2seq).
        module: takes the tensors of ``make_inputs(batch)`` in order, returns a tensor or a tuple.
        input_names, output_names: the graph's tensor names.
        make_inputs: random inputs at a batch size (``torch.Generator`` seeded by the caller).
        dynamic: per tensor name, its dynamic axes (``{0: "batch"}``).
        facts: what a user of the file needs, stored as metadata.
    """

    role: str
    module: nn.Module
    input_names: list[str]
    output_names: list[str]
    make_inputs: Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Exported:
    """A written ONNX file and the largest difference onnxruntime showed from PyTorch on its check inputs."""

    path: Path
    role: str
    max_abs_diff: float


# ----------------------------------------------------------------------------------------------- state
class Flat:
    """A state (a tensor, a tuple of tensors, or a dataclass holding tensors) as a flat list of tensors, and back."""

    def __init__(self, example: Any) -> None:
        self.example = example

    def tensors(self, state: Any) -> list[torch.Tensor]:
        if torch.is_tensor(state):
            return [state]
        if isinstance(state, (tuple, list)):
            return [t for item in state for t in Flat(item).tensors(item)]
        if dataclasses.is_dataclass(state):
            return [getattr(state, f.name) for f in dataclasses.fields(state) if torch.is_tensor(getattr(state, f.name))]
        if state is None:
            return []
        raise ConfigError(f"cannot export a state of type {type(state).__name__}; only tensors, tuples of tensors "
                          "and dataclasses holding tensors")  # fmt: skip

    def rebuild(self, tensors: list[torch.Tensor]) -> Any:
        items = iter(tensors)
        return self._rebuild(self.example, items)

    def _rebuild(self, example: Any, items: Iterator[torch.Tensor]) -> Any:
        if torch.is_tensor(example):
            return next(items)
        if isinstance(example, (tuple, list)):
            return type(example)(self._rebuild(e, items) for e in example)
        if dataclasses.is_dataclass(example):
            changes = {f.name: next(items) for f in dataclasses.fields(example) if torch.is_tensor(getattr(example, f.name))}
            return dataclasses.replace(example, **changes)
        return example


def batch_axes(small: list[torch.Tensor], large: list[torch.Tensor]) -> list[int | None]:
    """The batch axis of each tensor: the one whose size differs between two batch sizes (``None``: none does)."""
    axes = []
    for a, b in zip(small, large):
        differing = [i for i, (m, n) in enumerate(zip(a.shape, b.shape)) if m != n]
        axes.append(differing[0] if differing else None)
    return axes


def random_like(example: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator, *, high: int | None = None) -> torch.Tensor:
    """Random values of ``example``'s dtype: ids below ``high`` (or lengths in [1, ``high``]) for integers."""
    if example.dtype.is_floating_point:
        return torch.randn(shape, generator=generator, dtype=example.dtype)
    top = high if high is not None else int(example.max()) + 1
    return torch.randint(1, max(top, 2), shape, generator=generator, dtype=example.dtype)


def resize_batch(example: torch.Tensor, axis: int | None, batch: int) -> tuple[int, ...]:
    shape = list(example.shape)
    if axis is not None:
        shape[axis] = batch
    return tuple(shape)


# -------------------------------------------------------------------------------------------- families
class _Call(nn.Module):
    """A module whose forward is ``fn(*tensors)``, holding ``owner`` so its parameters are the graph's."""

    def __init__(self, owner: nn.Module, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.owner = owner
        self.fn = fn

    def forward(self, *tensors: torch.Tensor) -> Any:
        return self.fn(*tensors)


def classifier_graph(run: LoadedRun) -> Graph:
    size = run.info.get("input_size")
    if size is None:
        raise ConfigError(f"{run.folder} does not record its input size (a run of divekit.fit on Python batches); "
                          "export the model with torch.onnx.export and an example input")  # fmt: skip
    return image_classifier_graph(run.model, size, class_names=run.info.get("class_names"))


def image_classifier_graph(model: nn.Module, input_size: list[int], *, class_names: list[str] | None = None) -> Graph:
    """The graph of any image classifier: ``images (N, *input_size)`` in [0, 1] -> ``logits (N, K)``."""
    return Graph("model", _Call(model, model), ["images"], ["logits"],
                 lambda n, g: (torch.rand((n, *input_size), generator=g),),
                 {"images": {0: "batch"}, "logits": {0: "batch"}},
                 {"input_size": list(input_size), "class_names": class_names,
                  "input": "floats in [0, 1], resized to input_size"})  # fmt: skip


def regression_graph(run: LoadedRun) -> Graph:
    tau = run.info.get("tau")
    if tau is None:
        raise ConfigError(f"{run.folder} does not record its input width (task.json has no tau); it cannot be exported")
    return Graph("model", _Call(run.model, run.model), ["features"], ["prediction"],
                 lambda n, g: (torch.randn((n, tau), generator=g),),
                 {"features": {0: "batch"}, "prediction": {0: "batch"}}, {"tau": tau})  # fmt: skip


def stepping_graph(role: str, owner: nn.Module, step: Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]],
                   state_at: Callable[[int], Any], *, vocab_size: int, tokens: int) -> Graph:  # fmt: skip
    """A graph ``(tokens (N, tokens), *state) -> (logits, *new state)`` of a step function.

    ``state_at(n)`` gives a real state for a batch of ``n`` (its structure, shapes and batch axes are read
    from it). When the step hands back the very state it was given, the graph outputs the logits alone
    and ``tokens`` is dynamic (the decoder re-reads the whole prefix).
    """
    flat = Flat(state_at(TRACE_BATCH))
    small, large = flat.tensors(state_at(TRACE_BATCH)), flat.tensors(state_at(TRACE_BATCH + 1))
    axes = batch_axes(small, large)
    probe_tokens = torch.zeros((TRACE_BATCH, tokens), dtype=torch.long)
    probe_state = flat.rebuild(small)
    with torch.no_grad():
        _, returned = step(probe_tokens, probe_state)
    carries = not all(a is b for a, b in zip(flat.tensors(returned), small))
    names = [f"state_{i}" for i in range(len(small))]

    def forward(X: torch.Tensor, *state: torch.Tensor) -> Any:
        logits, new = step(X, flat.rebuild(list(state)))
        return (logits, *flat.tensors(new)) if carries else logits

    def make_inputs(n: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
        real = flat.tensors(state_at(n))
        length = tokens if carries else int(torch.randint(1, 6, (), generator=g))
        states = [random_like(t, resize_batch(t, a, n), g, high=int(t.max()) + 1) if not t.dtype.is_floating_point
                  else t + 0.1 * torch.randn(t.shape, generator=g) for t, a in zip(real, axes)]  # fmt: skip
        return (torch.randint(0, vocab_size, (n, length), generator=g), *states)

    dynamic = {"tokens": {0: "batch"} if carries else {0: "batch", 1: "steps"}, "logits": {0: "batch"}}
    dynamic |= {name: {a: "batch"} for name, a in zip(names, axes) if a is not None}
    outputs = ["logits"] + ([f"new_{name}" for name in names] if carries else [])
    dynamic |= {f"new_{name}": {a: "batch"} for name, a in zip(names, axes) if a is not None and carries}
    facts = {"feeds": "one token per step, the state carried" if carries else "the whole prefix every step",
             "state": names, "state_batch_axes": axes}  # fmt: skip
    return Graph(role, _Call(owner, forward), ["tokens", *names], outputs, make_inputs, dynamic, facts)


def language_model_graph(run: LoadedRun) -> Graph:
    model = run.model
    if getattr(model, "num_directions", 1) == 2:
        raise ConfigError(f"{run.folder} holds a bidirectional language model, which cannot generate a token at a "
                          "time (it was trained seeing the future, notes §6.8); there is no step to export")  # fmt: skip
    vocab_size = run.info["model_options"]["vocab_size"]

    def state_at(n: int) -> Any:
        with torch.no_grad():
            return model(torch.zeros((n, 1), dtype=torch.long), None)[1]

    graph = stepping_graph("model", model, lambda X, state: model(X, state), state_at, vocab_size=vocab_size, tokens=1)
    graph.facts |= {"vocab_size": vocab_size, "initial_state": "zeros"}
    return graph


def seq2seq_graphs(run: LoadedRun) -> list[Graph]:
    model = run.model
    num_steps = int(run.info["num_steps"])
    options = run.info["model_options"]
    src_vocab, tgt_vocab = options["src_vocab_size"], options["tgt_vocab_size"]

    def encode(src: torch.Tensor, valid_lens: torch.Tensor) -> Any:
        return model.decoder.init_state(model.encoder(src, valid_lens), valid_lens, use_cache=False)

    def sources(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.randint(0, src_vocab, (n, num_steps), generator=g),
                torch.randint(1, num_steps + 1, (n,), generator=g))  # fmt: skip

    def state_at(n: int) -> Any:
        with torch.no_grad():
            return encode(*sources(n, torch.Generator().manual_seed(n)))

    decoder = stepping_graph("decoder", model, lambda X, state: model.decoder(X, state), state_at,
                             vocab_size=tgt_vocab, tokens=1)  # fmt: skip
    flat = Flat(state_at(TRACE_BATCH))
    state_names = decoder.facts["state"]
    encoder = Graph("encoder", _Call(model, lambda src, lens: tuple(flat.tensors(encode(src, lens)))),
                    ["src", "src_valid_lens"], state_names, sources,
                    {"src": {0: "batch"}, "src_valid_lens": {0: "batch"}} | {
                        name: axes for name, axes in decoder.dynamic.items() if name in state_names},
                    {"num_steps": num_steps, "src_vocab_size": src_vocab})  # fmt: skip
    decoder.facts |= {"tgt_vocab_size": tgt_vocab}
    return [encoder, decoder]


def graphs_of(run: LoadedRun) -> list[Graph]:
    """The graphs of a run's task family (see the module docstring)."""
    task = run.task
    if task == "classification":
        return [classifier_graph(run)]
    if task == "regression":
        return [regression_graph(run)]
    if task == "language-model":
        return [language_model_graph(run)]
    if task == "seq2seq":
        return seq2seq_graphs(run)
    raise ConfigError(f"{run.folder} is a {task or 'task-less'} run; ONNX export knows classification, regression, "
                      "language-model and seq2seq runs")  # fmt: skip


# ------------------------------------------------------------------------------------- export, check
def onnx_bytes(graph: Graph) -> bytes:
    """The graph exported by ``torch.onnx`` (TorchScript tracing), as bytes; an exporter failure is one line."""
    example = graph.make_inputs(TRACE_BATCH, torch.Generator().manual_seed(0))
    buffer = _io.BytesIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(_io.StringIO()):
            warnings.simplefilter("ignore")  # the tracer's and exporter's notes are about internals
            torch.onnx.export(graph.module.eval(), example, buffer, input_names=graph.input_names,
                              output_names=graph.output_names, dynamic_axes=graph.dynamic, opset_version=OPSET,
                              dynamo=False)  # fmt: skip
    except Exception as err:  # noqa: BLE001 - whatever the exporter refuses becomes one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"the {graph.role} cannot be exported to ONNX: {type(err).__name__}: {first[:200]}") from err
    return with_metadata(buffer.getvalue(), graph.facts)


def with_metadata(model_bytes: bytes, facts: dict[str, Any]) -> bytes:
    import onnx

    proto = onnx.load_from_string(model_bytes)
    # an input the model never reads (a GRU encoder ignores the valid lengths) is not in the graph
    facts = {**facts, "inputs": [i.name for i in proto.graph.input]}
    entry = proto.metadata_props.add()
    entry.key, entry.value = "divekit", json.dumps(facts)
    return proto.SerializeToString()


def session(model_bytes: bytes | str, *, threads: int | None = None) -> Any:
    """An onnxruntime CPU session (``threads``: intra-op threads; ``None``: onnxruntime's choice)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def max_difference(graph: Graph, model_bytes: bytes, *, seed: int = 0) -> float:
    """The largest absolute difference between onnxruntime and PyTorch over the check inputs."""
    runtime = session(model_bytes)
    worst = 0.0
    for n in CHECK_BATCHES:
        inputs = graph.make_inputs(n, torch.Generator().manual_seed(seed + n))
        with torch.no_grad():
            expected = graph.module.eval()(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        present = {i.name for i in runtime.get_inputs()}
        got = runtime.run(None, {name: t.numpy() for name, t in zip(graph.input_names, inputs) if name in present})
        for want, have in zip(expected, got):
            if tuple(want.shape) != tuple(have.shape):
                return float("inf")
            worst = max(worst, float((want.double() - torch.from_numpy(have).double()).abs().max()))
    return worst


def checked_bytes(graph: Graph, *, atol: float = ATOL) -> tuple[bytes, float]:
    """The graph as ONNX bytes and onnxruntime's largest difference from PyTorch, refused at ``atol`` or more."""
    data = onnx_bytes(graph)
    diff = max_difference(graph, data)
    if not diff < atol:
        raise ConfigError(f"onnxruntime's {graph.role} outputs differ from PyTorch's by {diff:.3g} (limit "
                          f"{atol:g}) on random inputs; the export was not written")  # fmt: skip
    return data, diff


def output_paths(out: Path, graphs: list[Graph]) -> list[Path]:
    """``out`` for one graph; ``NAME.encoder.onnx`` and ``NAME.decoder.onnx`` beside it for two."""
    if len(graphs) == 1:
        return [out]
    stem = out.name[: -len(".onnx")] if out.name.endswith(".onnx") else out.name
    return [out.with_name(f"{stem}.{g.role}.onnx") for g in graphs]


def run_graphs(run: LoadedRun) -> list[Graph]:
    """The graphs of a run's model in float32 eval mode, each carrying the run's facts."""
    run.model.float().eval()
    graphs = graphs_of(run)
    facts = {"task": run.task, "model": run.config.model.name, "data": run.config.data.name}
    for graph in graphs:
        graph.facts = {**facts, "role": graph.role, "inputs": graph.input_names, "outputs": graph.output_names,
                       **graph.facts}  # fmt: skip
    return graphs


def export_onnx(run_dir: str | Path, out: str | Path, *, which: str = "best", model_file: str | None = None,
                model: nn.Module | None = None, atol: float = ATOL) -> list[Exported]:  # fmt: skip
    """Export the run's model to ONNX at ``out`` (two files for seq2seq), each checked by onnxruntime first.

    ``model_file`` and ``model`` are :func:`~divekit.runs.load.load_run`'s, for runs of a model
    from a file that moved or of a model object.

    Raises:
        ConfigError: the ONNX packages are missing, the model cannot be exported, or onnxruntime's
            outputs differ from PyTorch's by ``atol`` or more (then nothing is written).
    """
    require_onnx()
    graphs = run_graphs(load_run(run_dir, which=which, model_file=model_file, model=model))
    files = [(graph, *checked_bytes(graph, atol=atol)) for graph in graphs]
    written = []
    for (graph, data, diff), path in zip(files, output_paths(Path(out), graphs)):
        atomic_write_bytes(path, data)
        written.append(Exported(path, graph.role, diff))
    return written


def require_onnx() -> None:
    """One line naming the extra when onnx or onnxruntime is not installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise ConfigError(f"ONNX export needs the onnx and onnxruntime packages ({err}); install the extra: "
                          "pip install 'divekit[onnx]'") from err  # fmt: skip
