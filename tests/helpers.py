"""Helpers shared by tests."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent (as in a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path



@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a local mirror); yield its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def build_parts(config):
    """What a run of ``config`` trains with: ``.source``, ``.model``, ``.objective`` (threads and seeds set)."""
    from divekit.engine.distributed import DistContext
    from divekit.runs.train import prepare

    return prepare(config, dist=DistContext())


def make_trainer(config, out_dir=None, *, callbacks=(), log=lambda message: None):
    """The Trainer a run of ``config`` uses, built as ``divekit.runs.train`` builds it."""
    from divekit.engine.trainer import Trainer

    parts = build_parts(config)
    source = parts.source
    return Trainer(parts.model, parts.objective, source.train_batches(seed=config.train.seed),
                   eval_data=source.eval_batches(), train=config.train, optim=config.optim, transfer=source.transfer,
                   out_dir=out_dir, callbacks=callbacks, log=log)  # fmt: skip
