"""The HTTP service: the same answers as the library, JSON refusals that name the limit, batching that changes nothing."""

import asyncio
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from divekit.inference.generate import TextGenerator
from divekit.inference.predict import predict_images
from divekit.inference.translate import Translator
from divekit.runs import resolve_config, train

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from divekit.serve.app import create_app  # noqa: E402
from divekit.serve.limits import Limits  # noqa: E402

QUIET = {"train.progress": False, "train.epochs": 1}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    specs = {"lenet": ("lenet", {"optim.lr": 0.002, "data.val_split": 0.1}),
             "lm": ("gru-lm", {"data.name": "pydoc", "task.options.max_tokens": 4000, "model.options.num_hiddens": 16}),
             "s2s": ("seq2seq-attention", {})}  # fmt: skip
    for name, (model, overrides) in specs.items():
        train(resolve_config(model, overrides={**QUIET, **overrides}), out_dir=root / name, log=lambda m: None)
    return root


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def images(count, seed=0):
    rng = np.random.default_rng(seed)
    return [png(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(count)]


def post_image(client, data, **form):
    return client.post("/predict", files={"file": ("x.png", data, "image/png")}, data=form)


def test_predict_answers_what_divekit_predict_answers(runs, tmp_path):
    client = TestClient(create_app(runs / "lenet"))
    data = images(3)
    paths = []
    for i, d in enumerate(data):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(d)
    expected = list(predict_images(runs / "lenet", paths, top_k=4))
    for d, want in zip(data, expected):
        top = post_image(client, d, top_k="4").json()["top"]
        assert [t["class"] for t in top] == [c for c, _ in want.top]
        assert np.allclose([t["probability"] for t in top], [p for _, p in want.top], atol=1e-6)


def test_health_info_and_the_page(runs):
    client = TestClient(create_app(runs / "lenet"))
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    history = json.loads((runs / "lenet" / "metrics.json").read_text())
    assert (info["model"], info["data"], info["task"]) == ("lenet", "digits", "classification")
    assert info["final_metrics"] == history[-1] and info["best_metrics"]["epoch"] == 1
    assert info["limits"]["max_pixels"] == Limits().max_pixels
    page = client.get("/").text
    assert 'id="file"' in page and 'id="pad"' in page and "lenet on digits" in page and "src=" not in page
    assert "/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("case, status, message", [
    ("not-an-image", 415, "not a readable image"),
    ("too-many-pixels", 413, r"the image \(200x100\) is 20,000 pixels; the limit is 10,000 pixels \(max_pixels\)"),
    ("too-large-body", 413, r"the limit is 2,000 bytes \(max_body_bytes\)"),
    ("top-k", 400, r"top_k is 11; the limit is 10"),
    ("no-file", 422, "file: Field required"),
    ("wrong-route", 404, "/generate needs a language-model run; this service holds a classification run"),
])  # fmt: skip
def test_refusals_are_json_naming_the_limit_and_the_service_stays_up(runs, case, status, message):
    client = TestClient(create_app(runs / "lenet", limits=Limits(max_pixels=10_000, max_body_bytes=2_000)))
    noise = np.random.default_rng(1).integers(0, 256, (100, 200), dtype=np.uint8)
    response = {
        "not-an-image": lambda: post_image(client, b"hello, not an image"),
        "too-many-pixels": lambda: post_image(client, png(np.zeros((100, 200), np.uint8))),
        "too-large-body": lambda: post_image(client, png(noise)),
        "top-k": lambda: post_image(client, images(1)[0], top_k="11"),
        "no-file": lambda: client.post("/predict", data={"top_k": "3"}),
        "wrong-route": lambda: client.post("/generate", json={"prompt": "hi"}),
    }[case]()
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    import re

    assert re.search(message, response.json()["error"]), response.json()
    assert post_image(client, images(1)[0]).status_code == 200


async def concurrently(app, requests):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*(client.post(path, **kwargs) for path, kwargs in requests))


def test_concurrent_predictions_are_batched_and_equal_to_single_ones(runs):
    data = images(12, seed=3)
    single = TestClient(create_app(runs / "lenet", limits=Limits(max_batch=1)))
    alone = [post_image(single, d).json() for d in data]
    app = create_app(runs / "lenet", limits=Limits(max_batch=8, max_wait_ms=50))
    responses = asyncio.run(concurrently(app, [("/predict", {"files": {"file": ("x.png", d)}}) for d in data]))
    for got, want in zip(responses, alone):
        assert [t["class"] for t in got.json()["top"]] == [t["class"] for t in want["top"]]
        assert np.allclose([t["probability"] for t in got.json()["top"]], [t["probability"] for t in want["top"]],
                           atol=1e-5)  # fmt: skip
    stats = app.state.batcher.stats
    assert stats.items == 12 and 1 < stats.largest <= 8 and stats.batches < 12


def test_generate_equals_the_library_and_batched_prompts_change_nothing(runs):
    generator = TextGenerator.from_run(runs / "lm")
    prompts = ["the time", "a", "python is a language", "zz top"]
    app = create_app(runs / "lm", limits=Limits(max_batch=4, max_wait_ms=50))
    requests = [("/generate", {"json": {"prompt": p, "length": 12 + i}}) for i, p in enumerate(prompts)]
    responses = asyncio.run(concurrently(app, requests))
    assert [r.json()["text"] for r in responses] == [generator.complete(p, length=12 + i) for i, p in enumerate(prompts)]
    assert app.state.batcher.stats.largest > 1
    sampled = [asyncio.run(concurrently(app, [("/generate", {"json": {"prompt": "the", "length": 30, "temperature": 1.0,
                                                                        "top_k": 5, "seed": 7}})]))[0].json()["text"]
               for _ in range(2)]  # fmt: skip
    assert sampled[0] == sampled[1]  # a seed makes sampling repeatable


def test_generation_limits(runs):
    client = TestClient(create_app(runs / "lm", limits=Limits(max_length=20, max_text_chars=10)))
    cases = [({"prompt": "hello", "length": 21}, r"length is 21 tokens; the limit is 20 tokens \(max_length\)"),
             ({"prompt": "x" * 11, "length": 5}, r"the prompt \(11 characters\) is 11 characters; the limit is 10 characters"),
             ({"prompt": "hi", "length": 5, "temperature": -1}, "temperature must be at least 0"),
             ({"prompt": "hi", "length": "many"}, "length: Input should be a valid integer")]  # fmt: skip
    import re

    for body, message in cases:
        response = client.post("/generate", json=body)
        assert 400 <= response.status_code < 500 and re.search(message, response.json()["error"]), response.json()


def test_translate_with_and_without_attention(runs):
    translator = Translator.from_run(runs / "s2s")
    client = TestClient(create_app(runs / "s2s"))
    for sentence in ("twenty one", "three hundred"):
        plain = client.post("/translate", json={"sentence": sentence}).json()
        assert plain["translation"] == translator.translate_batch([sentence])[0].text
        shown = client.post("/translate", json={"sentence": sentence, "attention": True}).json()
        attention = shown["attention"]
        weights = torch.tensor(attention["weights"])
        assert weights.shape == (len(attention["output"]), len(attention["source"]))
        assert torch.allclose(weights.sum(dim=1), torch.ones(len(weights)), atol=1e-5)
        assert shown["translation"] == plain["translation"]
    assert client.post("/translate", json={"sentence": "  "}).status_code == 400


def test_one_failing_item_fails_alone():
    import concurrent.futures

    from divekit.serve.batcher import MicroBatcher

    def double(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [2 * i for i in items]

    async def main():
        batcher = MicroBatcher(double, max_batch=8, max_wait_ms=30,
                               executor=concurrent.futures.ThreadPoolExecutor(max_workers=1))  # fmt: skip
        return await asyncio.gather(*(batcher.submit(i) for i in [1, 2, "bad", 4]), return_exceptions=True), batcher

    results, batcher = asyncio.run(main())
    assert results[:2] == [2, 4] and results[3] == 8 and isinstance(results[2], ValueError)
    assert batcher.stats.largest == 4
