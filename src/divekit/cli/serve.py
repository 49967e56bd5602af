"""``divekit serve RUN``: the run's model behind an HTTP service and a page to try it (see :mod:`divekit.serve`)."""

from __future__ import annotations

import argparse
import dataclasses
import socket
import sys

from divekit.cli.common import add_model_file, split_assignment
from divekit.errors import ConfigError
from divekit.schema import parse_value


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("serve", help="serve a trained run over HTTP, with a page to try it",
                              description="POST /predict, /generate or /translate (by the run's task), GET /health, "
                                          "/info, /docs and / (a page to try the model). Needs divekit[serve].")  # fmt: skip
    s.add_argument("run_dir", metavar="RUN")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (0: any free one; the address is printed)")
    s.add_argument("--checkpoint", choices=("best", "last"), default="best")
    s.add_argument("--threads", type=int, metavar="N", help="PyTorch CPU threads for the model")
    s.add_argument("--no-batching", action="store_true", help="compute every request alone (same as --max-batch 1)")
    s.add_argument("--max-batch", type=int, metavar="N", help="most requests computed together (default 32)")
    s.add_argument("--max-wait-ms", type=float, metavar="X", help="how long a request waits for others (default 5)")
    s.add_argument("--limit", action="append", default=[], metavar="KEY=VALUE",
                   help="a request limit, e.g. --limit max_pixels=1000000; keys: max_body_bytes, max_pixels, "
                        "max_text_chars, max_length, max_top_k")  # fmt: skip
    add_model_file(s)
    s.set_defaults(handler=run_serve)


def limits_from(args: argparse.Namespace):
    from divekit.serve.limits import Limits

    values = {}
    names = [f.name for f in dataclasses.fields(Limits)]
    for item in args.limit:
        key, value = split_assignment(item, "--limit")
        if key not in names:
            raise ConfigError(f"unknown --limit {key!r}; use one of {', '.join(names)}")
        values[key] = parse_value(value)
    if args.max_batch is not None:
        values["max_batch"] = args.max_batch
    if args.max_wait_ms is not None:
        values["max_wait_ms"] = args.max_wait_ms
    if args.no_batching:
        values["max_batch"] = 1
    return Limits(**values).validate()


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from divekit.serve.app import create_app
    except ImportError as err:
        raise ConfigError(f"divekit serve needs FastAPI and uvicorn ({err}); pip install 'divekit[serve]'") from err
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    app = create_app(args.run_dir, limits=limits_from(args), which=args.checkpoint, model_file=args.model_file)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    print(f"serving {args.run_dir} on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    server.run(sockets=[sock])
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or one line saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port") from err
    sock.listen(2048)
    return sock
