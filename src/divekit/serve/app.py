"""The HTTP service around a trained run (FastAPI): prediction, generation, translation, a page to try them.

Routes: ``GET /`` (the page), ``GET /health``, ``GET /info`` (model, data, metrics, limits),
``POST /predict`` (image upload -> top-k classes), ``POST /generate`` (prompt -> text),
``POST /translate`` (sentence -> translation, attention on request); FastAPI adds ``/openapi.json``
and ``/docs``. A route of another task answers 404 naming the run's task. Every refusal is JSON
``{"error": "..."}`` with a 4xx status naming the limit it broke; an unexpected failure answers 500
for that request alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from divekit.errors import DivekitError
from divekit.runs.load import LoadedRun, load_run
from divekit.serve.backends import SERVICES, GenerationRequest
from divekit.serve.batcher import MicroBatcher
from divekit.serve.limits import Limits, RequestError
from divekit.serve.middleware import BodyLimit


class GenerateBody(BaseModel):
    prompt: str
    length: int = 50
    temperature: float = 0.0
    top_k: int | None = None
    seed: int | None = None


class TranslateBody(BaseModel):
    sentence: str
    attention: bool = False


def run_facts(run: LoadedRun) -> dict[str, Any]:
    """What ``/info`` says about the run: names, task, classes, and its final and best metrics."""
    from divekit.runs.listing import summarize

    summary = summarize(run.folder)
    return {"model": run.config.model.name, "data": run.config.data.name, "task": run.task,
            "checkpoint": Path(run.checkpoint).name, "epochs": summary.epochs_done, "status": summary.status,
            "final_metrics": summary.final, "best_metrics": summary.best, "monitor": summary.monitor,
            "class_names": run.info.get("class_names")}  # fmt: skip


def create_app(run_dir: str | Path, *, limits: Limits | None = None, which: str = "best",
               model_file: str | None = None) -> FastAPI:  # fmt: skip
    """The service for the run in ``run_dir`` (its model loaded on the CPU, in eval mode)."""
    limits = (limits or Limits()).validate()
    run = load_run(run_dir, which=which, model_file=model_file)
    if run.task not in SERVICES:
        raise DivekitError(f"{run_dir} is a {run.task} run; the service serves {', '.join(SERVICES)} runs")
    service = SERVICES[run.task](run, limits)
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="divekit-model")
    batcher = MicroBatcher(service.run_batch, max_batch=limits.max_batch, max_wait_ms=limits.max_wait_ms,
                           executor=executor)  # fmt: skip
    facts = run_facts(run)
    app = FastAPI(title=f"divekit: {facts['model']} on {facts['data']}", version="1",
                  description=f"A trained {run.task} run served by divekit.")  # fmt: skip
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.state.service, app.state.batcher, app.state.limits = service, batcher, limits
    add_error_handlers(app)
    add_routes(app, facts, run.task)
    return app


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def refused(request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(DivekitError)
    async def bad_input(request: Request, err: DivekitError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where or 'request'}: {first.get('msg', 'malformed request')}"}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({type(err).__name__}); the service is still up"}, status_code=500)


def require_task(app: FastAPI, task: str, route: str) -> Any:
    service = app.state.service
    if service.task != task:
        raise RequestError(f"{route} needs a {task} run; this service holds a {service.task} run", status=404)
    return service


def add_routes(app: FastAPI, facts: dict[str, Any], task: str) -> None:
    from divekit.serve.page import page_html

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return page_html(facts)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        stats = app.state.batcher.stats
        return {**facts, "limits": app.state.limits.as_dict(),
                "batching": {"requests": stats.items, "batches": stats.batches, "largest": stats.largest}}  # fmt: skip

    @app.post("/predict")
    async def predict(file: UploadFile = File(...), top_k: int = Form(5)) -> dict[str, Any]:
        service = require_task(app, "classification", "/predict")
        data = await file.read()
        item = await run_in_threadpool(service.prepare, data, top_k=top_k)
        return {"top": await app.state.batcher.submit(item)}

    @app.post("/generate")
    async def generate(body: GenerateBody) -> dict[str, Any]:
        service = require_task(app, "language-model", "/generate")
        item = service.prepare(GenerationRequest(**body.model_dump()))
        return {"text": await app.state.batcher.submit(item)}

    @app.post("/translate")
    async def translate(body: TranslateBody) -> dict[str, Any]:
        service = require_task(app, "seq2seq", "/translate")
        sentence = service.prepare(body.sentence)
        if body.attention:  # one sentence's attention maps: computed alone, on the model's thread
            executor = app.state.batcher.executor
            return await asyncio.get_running_loop().run_in_executor(executor, service.with_attention, sentence)
        return await app.state.batcher.submit(sentence)
