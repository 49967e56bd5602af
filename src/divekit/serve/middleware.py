"""Refuse a request body over the limit before the application reads it (ASGI middleware)."""

from __future__ import annotations

import json
from typing import Any


class BodyTooLarge(Exception):
    """The body grew past the limit while it streamed in (no Content-Length, or a wrong one)."""


class BodyLimit:
    """A 413 JSON answer for a body over ``max_bytes``: at once from ``Content-Length``, else while streaming."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self.refuse(send, int(length))
            return
        received, started = 0, False

        async def counting_receive() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self.refuse(send, received)

    async def refuse(self, send: Any, size: int) -> None:
        body = json.dumps({"error": f"the request body is {size:,} bytes or more; the limit is "
                                    f"{self.max_bytes:,} bytes (max_body_bytes)"}).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
