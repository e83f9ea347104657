"""The raw ASGI shapes the API's middlewares work with, and their one way to answer: JSON.

The middlewares (``limits.BodyLimitMiddleware``, ``auth.AuthGate``) answer before FastAPI
has parsed anything, so they speak ASGI directly; their errors look like every other one:
``{"detail": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

MB = 1024 * 1024

# ASGI, spelled out (the server and Starlette agree on these shapes).
Scope = Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_json(send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer ``{"detail": detail}`` with ``status`` and any extra ``headers``."""
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def header_values(scope: Scope, name: bytes) -> list[bytes]:
    """Every value of the header ``name`` (lower case, as servers hand ASGI header names)."""
    return [value for key, value in scope.get("headers") or () if key == name]


def client_host(scope: Scope) -> str | None:
    """The peer's address as the server saw it (after uvicorn's trusted X-Forwarded-For rewrite)."""
    client = scope.get("client")
    return client[0] if client else None
