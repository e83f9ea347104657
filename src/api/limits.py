"""The request body's limits: its size (413) and its pace (408), checked while it streams in.

A larger Content-Length is refused before any of the body is read; a body without one is
counted as it comes. A body that pauses longer than ``idle_s`` between two pieces, or is
not all in after ``total_s`` (a slow or stalled upload), is answered 408; one that is
still coming in when the server begins to shut down, 503. Each time, whatever the app
made of the cut-off body is dropped and the error sent instead, with ``Connection: close``
for the timeouts (uvicorn then drops the rest of the upload unread into memory).
"""

from __future__ import annotations

import asyncio
import threading

from src.api.asgi import MB, ASGIApp, Message, Receive, Scope, Send, header_values, send_json
from src.api.capacity import SHUTDOWN_DETAIL, ShuttingDown, wait_unless_stopping


class _BodyFailed(Exception):
    pass


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``: by Content-Length before reading, else while
    streaming; 408 for a body slower than ``idle_s`` between pieces or ``total_s`` in all
    (None: no limit); 503 for one cut off by the server's shutdown (``stopping``)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        idle_s: float | None = None,
        total_s: float | None = None,
        stopping: threading.Event | None = None,
    ):
        self.app, self.max_bytes = app, max_bytes
        self.idle_s, self.total_s = idle_s, total_s
        self.stopping = stopping or threading.Event()

    def _too_large(self) -> tuple[int, str, list[tuple[bytes, bytes]]]:
        detail = f"request body too large: the limit is {self.max_bytes / MB:g} MB per request (FER_API_MAX_REQUEST_MB)"
        return 413, detail, []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next(iter(header_values(scope, b"content-length")), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, *self._too_large())  # before the first receive: a 100-continue client sends nothing
            return
        loop = asyncio.get_running_loop()
        deadline = None if self.total_s is None else loop.time() + self.total_s
        state: dict = {"received": 0, "failure": None, "started": False, "complete": False}
        close = [(b"connection", b"close")]

        async def next_message() -> Message:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            idle_first = self.idle_s is not None and (left is None or self.idle_s < left)
            wait = self.idle_s if idle_first else left
            if wait is None:
                return await receive()
            try:
                return await wait_unless_stopping(receive(), wait, self.stopping)
            except ShuttingDown:
                state["failure"] = (503, SHUTDOWN_DETAIL, [(b"retry-after", b"5"), *close])
            except TimeoutError:
                if idle_first:
                    detail = f"request body too slow: nothing came for {self.idle_s:g} s (FER_API_BODY_IDLE_S)"
                else:
                    detail = f"request body too slow: not all in after {self.total_s:g} s (FER_API_BODY_TIMEOUT_S)"
                state["failure"] = (408, detail, close)
            raise _BodyFailed

        async def limited_receive() -> Message:
            if state["failure"]:
                raise _BodyFailed
            if state["complete"]:  # the body is in: a later receive waits for the disconnect, unhurried
                return await receive()
            message = await next_message()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["failure"] = self._too_large()
                    raise _BodyFailed
                state["complete"] = not message.get("more_body", False)
            else:
                state["complete"] = True
            return message

        async def guarded_send(message: Message) -> None:
            if state["failure"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["failure"]:
                raise
        if state["failure"] and not state["started"]:
            await send_json(send, *state["failure"])
