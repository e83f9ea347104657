"""Who may call the /v1 routes: the API key, the no-key (loopback only) mode, proxies and
the throttling of failed keys. docs/api.md ("Auth") is the contract.

* With ``FER_API_KEY`` set, every /v1 call sends ``Authorization: Bearer <key>``. The key is
  compared as bytes: the header's bytes against the key's UTF-8 bytes (clients send a
  non-ASCII key UTF-8 encoded), through SHA-256 digests and ``hmac.compare_digest``, so the
  time taken tells nothing of the key, its length included. Keys shorter than
  ``MIN_KEY_CHARS`` are refused at start-up (``key_problem``, ``serve_problem``).
* Without a key only loopback clients are served, and no request that came through a
  proxy (one carrying ``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``... headers): a proxy
  in front means the API is not only local, whatever address the proxy connects from.
* Failed keys are throttled per client address (``AuthThrottle``): a token bucket of
  ``burst`` failures, refilled one every ``refill_s`` seconds; an empty bucket answers 429
  with ``Retry-After`` to every /v1 call from that address, the right key included.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from src.api.asgi import ASGIApp, Receive, Scope, Send, client_host, header_values, send_json

V1_PREFIX = "/v1"
LOOPBACK_NAMES = ("localhost",)
# 16 random characters of even a small alphabet are out of reach of online guessing,
# throttled as below; `openssl rand -hex 32` makes 64.
MIN_KEY_CHARS = 16
# Headers a proxy adds (RFC 7239, the X-Forwarded-* family, nginx's X-Real-IP, RFC 9110's Via).
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "Via")
MISSING_KEY = "missing API key: send the header 'Authorization: Bearer <key>'"
WRONG_KEY = "wrong API key"
LOOPBACK_ONLY = "FER_API_KEY is not set on the server: it answers calls from its own machine only"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only: localhost, 127.0.0.0/8 or ::1."""
    host = (host or "").strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Start-up checks -------------------------------------------------------------------------


def key_problem(api_key: str) -> str | None:
    """Why ``api_key`` (FER_API_KEY) may not be served, or None when it may (unset included)."""
    if not api_key:
        return None
    try:
        api_key.encode("utf-8")
    except UnicodeEncodeError:
        return "FER_API_KEY is not valid UTF-8: clients could never send it"
    if len(api_key) < MIN_KEY_CHARS:
        return (
            f"FER_API_KEY is too short: {len(api_key)} of at least {MIN_KEY_CHARS} characters "
            "(make one with: openssl rand -hex 32)"
        )
    return None


def serve_problem(api_key: str, host: str) -> str | None:
    """Why the API may not be served on ``host`` with ``api_key``, as one line for the user, or None.

    No key is only for loopback addresses; a key, on any address, must pass ``key_problem``
    (a loopback bind may still sit behind a reverse proxy)."""
    if not api_key and not is_loopback(host):
        return (
            f"refusing to serve on {host} without an API key: set FER_API_KEY (clients then send "
            "'Authorization: Bearer <key>'), or bind to a loopback address (127.0.0.1, ::1, localhost)"
        )
    return key_problem(api_key)


# --- The per-request rule ---------------------------------------------------------------------


def _digest(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


def _header_bytes(value: str | bytes) -> bytes:
    """A header value as the bytes sent. Frameworks hand headers as latin-1 text (one
    character per byte); other text (a caller's own string) is taken as UTF-8."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def auth_problem(
    api_key: str,
    authorization: str | bytes | None,
    client: str | None,
    forwarded_by: str | None = None,
) -> tuple[int, str] | None:
    """Why a /v1 call may not go on, as (status, message), or None when it may.

    ``authorization`` is the header as sent (bytes, or latin-1 text as frameworks hand it);
    ``forwarded_by`` names a proxy header the request carries, if any. With a key configured
    the header must be ``Bearer <key>``, the key as UTF-8; without one only loopback clients
    not behind a proxy are served.
    """
    if not api_key:
        if forwarded_by:
            return 403, (
                f"{LOOPBACK_ONLY}, and this call came through a proxy (it carries a {forwarded_by} header); "
                "set FER_API_KEY to serve behind a proxy"
            )
        if is_loopback(client or ""):
            return None
        return 403, LOOPBACK_ONLY
    scheme, _, token = _header_bytes(authorization or b"").partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return 401, MISSING_KEY
    if not hmac.compare_digest(_digest(token), _digest(api_key.encode("utf-8"))):
        return 401, WRONG_KEY
    return None


def forwarding_header(scope: Scope) -> str | None:
    """The first proxy header the request carries (its name as in ``FORWARDING_HEADERS``), or None."""
    present = {key.lower() for key, _ in scope.get("headers") or ()}
    return next((name for name in FORWARDING_HEADERS if name.lower().encode() in present), None)


# --- Throttling failed keys -------------------------------------------------------------------


def client_key(host: str | None) -> str:
    """The throttling unit of an address: the address itself, or its /64 for IPv6 (one
    machine usually holds a whole /64)."""
    try:
        address = ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return host or ""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class AuthThrottle:
    """Failed authentications per client address, as token buckets; in-process and thread-safe.

    Each address may fail ``burst`` times in a row, then once per ``refill_s`` seconds.
    At most ``max_clients`` addresses are tracked: past that the one seen least recently
    is forgotten, so memory stays bounded whatever the number of addresses.
    """

    def __init__(
        self,
        burst: int = 10,
        refill_s: float = 6.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        if burst < 1 or refill_s <= 0 or max_clients < 1:
            raise ValueError("burst and max_clients must be at least 1, refill_s above 0")
        self.burst, self.refill_s, self.max_clients, self.clock = burst, refill_s, max_clients, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self._lock = threading.Lock()

    def _tokens(self, key: str, now: float) -> float:
        tokens, when = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - when) / self.refill_s)

    def retry_after(self, host: str | None) -> int:
        """0 when ``host`` may try a key now, else the whole seconds until it may."""
        key = client_key(host)
        with self._lock:
            if key not in self._buckets:
                return 0
            tokens = self._tokens(key, self.clock())
        return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) * self.refill_s))

    def failed(self, host: str | None) -> None:
        """Count one failed authentication of ``host``."""
        key = client_key(host)
        with self._lock:
            now = self.clock()
            tokens = max(0.0, self._tokens(key, now) - 1)
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)


# --- Enforcement --------------------------------------------------------------------------------


class AuthGate:
    """Checks the key of /v1 calls before anything reads their body (FastAPI parses a form
    before it runs the route's dependencies), so no upload is taken from an unknown caller;
    throttles the addresses that send wrong keys."""

    def __init__(self, app: ASGIApp, api_key: str, throttle: AuthThrottle):
        self.app, self.api_key, self.throttle = app, api_key, throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == V1_PREFIX or path.startswith(V1_PREFIX + "/")):
            host = client_host(scope)
            # No await between the check and the count: requests of one event loop cannot interleave here.
            wait = self.throttle.retry_after(host) if self.api_key else 0
            if wait:
                detail = f"too many wrong API keys from this address: try again in {wait} s"
                await send_json(send, 429, detail, [(b"retry-after", str(wait).encode())])
                return
            authorization = next(iter(header_values(scope, b"authorization")), None)
            problem = auth_problem(self.api_key, authorization, host, forwarding_header(scope))
            if problem is not None:
                status, detail = problem
                if status == 401:
                    self.throttle.failed(host)
                await send_json(send, status, detail, [(b"www-authenticate", b"Bearer")] if status == 401 else [])
                return
        await self.app(scope, receive, send)


_bearer = HTTPBearer(auto_error=False, description="the server's FER_API_KEY (UTF-8)")


def require_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """The same check as ``AuthGate``, as a dependency: it puts the bearer scheme in /docs."""
    authorization = request.headers.get("authorization") if credentials else None
    problem = auth_problem(
        request.app.state.settings.api_key, authorization, client_host(request.scope), forwarding_header(request.scope)
    )
    if problem is not None:
        status, detail = problem
        raise HTTPException(status, detail, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
