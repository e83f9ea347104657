"""Serving the API with uvicorn: its limits, the header timeout it lacks, and a shutdown the app hears.

``ServerSettings`` holds what uvicorn enforces, from ``FER_API_*``: keep-alive connections
close after ``KEEP_ALIVE_S`` idle; a request's headers may take ``MAX_HEADER_BYTES``
(uvicorn answers 400 beyond); ``max_connections`` connections and requests at once
(``limit_concurrency``: uvicorn answers 503 beyond); on SIGTERM, requests in progress get
``shutdown_s`` to finish before uvicorn cancels them (``timeout_graceful_shutdown``).

uvicorn 0.54 has no timeout on a request's headers: its keep-alive timer stops at a
request's first byte, so a client that sent part of its headers and then nothing
(slowloris), or opened a connection and sent nothing, held it forever. ``HeaderTimeout``
is uvicorn's h11 protocol with that deadline: ``header_timeout_s`` from the connection's
opening, or from the first byte of each later request on it, to the end of its headers;
then the connection is closed, with 408 if part of a request had come. The body's pace
is the app's business (``limits.BodyLimitMiddleware``) while the app reads it; a body
nobody reads, because the answer went out first (401 for a missing key, 413 for a
declared size), gets the same ``header_timeout_s`` after that answer to end, else the
connection is closed: uvicorn would otherwise drop it a piece at a time, forever.

``ApiServer`` sets the app's ``stopping`` event on SIGTERM or Ctrl-C, so that work in
progress stops at the next file and answers 503 (``capacity``), and a stalled upload is
answered then too, instead of holding the shutdown until ``shutdown_s``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from src import config

KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 16 * 1024

logger = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class ServerSettings:
    """Where the API listens and what uvicorn enforces; ``FER_API_*`` unless given."""

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    header_timeout_s: float = field(default_factory=lambda: config.API_HEADER_TIMEOUT_S)
    max_connections: int = field(default_factory=lambda: config.API_MAX_CONNECTIONS)
    shutdown_s: int = field(default_factory=lambda: config.API_SHUTDOWN_S)


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps(
        {"detail": f"request headers too slow: not all in after {seconds:g} s (FER_API_HEADER_TIMEOUT_S)"}
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeaderTimeout(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers take over ``header_timeout_s``."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _request_begun = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # a request's headers are still coming
            self._request_begun = self._request_begun or bool(data)
            self._arm_header_timer()
        elif self._discarding_body():
            self._arm_header_timer()
        else:
            self._disarm_header_timer()
            self._request_begun = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._discarding_body():
            self._arm_header_timer()

    def _discarding_body(self) -> bool:
        """The answer is out while the client still sends a body nobody will read."""
        return self.conn.their_state is h11.SEND_BODY and self.cycle is not None and self.cycle.response_complete

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._discarding_body():
            self.transport.close()
            return
        if self.conn.their_state is not h11.IDLE:
            return
        if self._request_begun:
            logger.info("closed a connection whose request headers took over %g s", self.header_timeout_s)
            self.transport.write(_timeout_response(self.header_timeout_s))
        self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeout]:
    """``HeaderTimeout`` with its deadline set (uvicorn builds one protocol object per connection)."""
    if seconds <= 0:
        raise ValueError("the header timeout must be above 0 s")
    return type("HeaderTimeoutProtocol", (HeaderTimeout,), {"header_timeout_s": seconds})


class ApiServer(uvicorn.Server):
    """uvicorn's server, telling the app (``stopping``) as soon as it is asked to stop."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event):
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)


def build_server(app: Any, settings: ServerSettings) -> ApiServer:
    """The uvicorn server for ``app`` (from ``create_app``, whose ``state.stopping`` it sets)."""
    uv_config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        http=header_timeout_protocol(settings.header_timeout_s),
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.shutdown_s,
    )
    return ApiServer(uv_config, app.state.stopping)


def run(app: Any, settings: ServerSettings) -> None:
    """Serve ``app`` until SIGTERM or Ctrl-C."""
    build_server(app, settings).run()
