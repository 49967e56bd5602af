"""ONNX export: every family's graphs agree with PyTorch under onnxruntime, and decode the same outputs."""

import json

import numpy as np
import pytest
import torch

from divekit.errors import ConfigError
from divekit.runs import fit, load_run, resolve_config, train
from divekit.runs.onnx import export_onnx

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

QUIET = {"train.progress": False, "train.epochs": 1}
TEXT = {"data.name": "pydoc", "task.options.max_tokens": 4000, "model.options.num_hiddens": 16}
SMALL_S2S = {"data.batch_size": 64}
RUNS = {
    "lenet": ("lenet", {}),
    "ar-mlp": ("ar-mlp", {}),
    "gru-lm": ("gru-lm", TEXT),
    "lstm-lm-2-layers": ("lstm-lm", {**TEXT, "model.options.num_layers": 2}),
    "rnn-lm-scratch": ("rnn-lm", {**TEXT, "model.options.scratch": True}),
    "seq2seq": ("seq2seq", SMALL_S2S),
    "seq2seq-attention": ("seq2seq-attention", SMALL_S2S),
    "transformer": ("transformer", SMALL_S2S),
}


def quiet(message):
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx-runs")
    for name, (model, overrides) in RUNS.items():
        train(resolve_config(model, overrides={**QUIET, **overrides}), out_dir=root / name, log=quiet)
    return root


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def facts(path):
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["divekit"])


@pytest.mark.parametrize("name", ["lenet", "ar-mlp"])
def test_a_feed_forward_model_matches_at_any_batch_size(runs, tmp_path, name):
    (exported,) = export_onnx(runs / name, tmp_path / "m.onnx")
    assert exported.path == tmp_path / "m.onnx" and exported.max_abs_diff < 1e-4
    model = load_run(runs / name).model
    info = facts(exported.path)
    shape = info["input_size"] if name == "lenet" else [info["tau"]]
    for n in (1, 7, 64):
        X = torch.rand(n, *shape)
        (got,) = session(exported.path).run(None, {info["inputs"][0]: X.numpy()})
        assert np.abs(got - model(X).detach().numpy()).max() < 1e-4


def onnx_greedy_text(path, prompt, length):
    """Greedy generation run entirely by onnxruntime: one step at a time, the state carried."""
    runtime, info = session(path), facts(path)
    state = [np.zeros([d if d != -1 else 1 for d in shape], np.float32) for shape in state_shapes(runtime)]
    out = []
    for token in prompt[:-1]:
        _, *state = runtime.run(None, feeds(info, token, state))
    token = prompt[-1]
    for _ in range(length):
        logits, *state = runtime.run(None, feeds(info, token, state))
        token = int(logits[0, -1].argmax())
        out.append(token)
    return out


def state_shapes(runtime):
    return [[d if isinstance(d, int) else 1 for d in i.shape] for i in runtime.get_inputs()[1:]]


def feeds(info, token, state):
    return {"tokens": np.array([[token]], np.int64), **dict(zip(info["state"], state))}


@pytest.mark.parametrize("name", ["gru-lm", "lstm-lm-2-layers", "rnn-lm-scratch"])
def test_a_language_model_step_generates_what_pytorch_generates(runs, tmp_path, name):
    (exported,) = export_onnx(runs / name, tmp_path / "lm.onnx")
    assert exported.max_abs_diff < 1e-4
    model = load_run(runs / name).model
    prompt = [3, 5, 8, 1, 4]
    with torch.no_grad():
        logits, state = model(torch.tensor([prompt]), None)
        expected = []
        for _ in range(20):
            expected.append(int(logits[0, -1].argmax()))
            logits, state = model(torch.tensor([[expected[-1]]]), state)
    assert onnx_greedy_text(exported.path, prompt, 20) == expected


@pytest.mark.parametrize("name", ["seq2seq", "seq2seq-attention", "transformer"])
def test_seq2seq_encoder_and_decoder_translate_as_pytorch_does(runs, tmp_path, name):
    from divekit.inference.translate import Translator

    encoder, decoder = export_onnx(runs / name, tmp_path / "t.onnx")
    assert (encoder.path.name, decoder.path.name) == ("t.encoder.onnx", "t.decoder.onnx")
    assert encoder.max_abs_diff < 1e-4 and decoder.max_abs_diff < 1e-4
    translator = Translator.from_run(runs / name)
    sentences = ["one hundred twenty", "three thousand four", "seven"]
    src, valid, _ = translator._encode(sentences)
    bos, eos = translator.tgt_vocab["<bos>"], translator.tgt_vocab["<eos>"]
    expected = [t.words for t in translator.translate_batch(sentences)]
    enc, dec, dec_info = session(encoder.path), session(decoder.path), facts(decoder.path)
    enc_inputs = {"src": src.numpy(), "src_valid_lens": valid.numpy()}
    state = enc.run(None, {i.name: enc_inputs[i.name] for i in enc.get_inputs()})
    carries = dec_info["feeds"].startswith("one token")
    tokens = np.full((len(sentences), 1), bos, np.int64)
    for _ in range(translator.num_steps):
        outputs = dec.run(None, {"tokens": tokens[:, -1:] if carries else tokens, **dict(zip(dec_info["state"], state))})
        if carries:
            state = outputs[1:]
        tokens = np.concatenate([tokens, outputs[0][:, -1].argmax(-1)[:, None]], axis=1)
    got = [row[1:].tolist() for row in tokens]
    got = [translator._words(row[: row.index(eos)] if eos in row else row) for row in got]
    assert got == expected


def test_a_bidirectional_language_model_says_why_in_one_line(tmp_path):
    folder = tmp_path / "bi"
    train(resolve_config("gru-lm", overrides={**QUIET, **TEXT, "model.options.bidirectional": True}), out_dir=folder,
          log=quiet)  # fmt: skip
    with pytest.raises(ConfigError, match="bidirectional language model, which cannot generate") as info:
        export_onnx(folder, tmp_path / "bi.onnx")
    assert "\n" not in str(info.value) and not (tmp_path / "bi.onnx").exists()


def test_a_failed_check_writes_nothing(runs, tmp_path):
    with pytest.raises(ConfigError, match=r"differ from PyTorch's by .* \(limit 0\) on random inputs; the export was not written"):
        export_onnx(runs / "lenet", tmp_path / "m.onnx", atol=0.0)
    assert not (tmp_path / "m.onnx").exists()


def test_a_run_of_python_batches_without_an_input_size(tmp_path):
    batches = [(torch.rand(8, 1, 4, 4), torch.randint(0, 2, (8,)))]
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    fit(model, batches, epochs=1, out_dir=tmp_path / "run", config={"train.progress": False}, log=quiet)
    with pytest.raises(ConfigError, match="does not record its input size"):
        export_onnx(tmp_path / "run", tmp_path / "m.onnx", model=model)


def test_an_exporter_failure_is_one_line(runs, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported: ONNX export of operator foo\nmore details")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with pytest.raises(ConfigError, match=r"^the model cannot be exported to ONNX: RuntimeError: Unsupported: ONNX export of operator foo$"):
        export_onnx(runs / "lenet", tmp_path / "m.onnx")


def test_without_the_packages_the_extra_is_named(runs, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(ConfigError, match=r"pip install 'divekit\[onnx\]'"):
        export_onnx(runs / "lenet", tmp_path / "m.onnx")
