"""The request body limit: 413 before reading for a larger Content-Length, else while it streams in."""

from __future__ import annotations

from src.api.asgi import MB, ASGIApp, Message, Receive, Scope, Send, header_values, send_json


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``: by Content-Length before reading, else while streaming.

    Once the limit is passed, whatever the app makes of the cut-off body is dropped and
    the 413 sent instead (uvicorn then discards the rest of the upload unread into memory).
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def _reject(self, send: Send) -> None:
        detail = f"request body too large: the limit is {self.max_bytes / MB:g} MB per request (FER_API_MAX_REQUEST_MB)"
        await send_json(send, 413, detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next(iter(header_values(scope, b"content-length")), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)  # before the first receive: a 100-continue client sends nothing
            return
        state = {"received": 0, "over": False, "started": False}

        async def limited_receive() -> Message:
            if state["over"]:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["over"] = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["over"]:
                raise
        if state["over"] and not state["started"]:
            await self._reject(send)
