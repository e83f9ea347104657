"""How much the API does at once, so that memory stays bounded whatever clients send.

* ``AnalysisSlots`` bounds the work and the memory of the analyses, file by file:

  - at most ``size`` files are read, decoded and analysed at once (``FER_API_ANALYSES``;
    by default one per core and one more: on this loaded 2-core machine one per core kept
    the server at 1.35 cores at concurrency 4, one more at 1.6 cores, 8-20% more requests/s);
  - the images being decoded at once are held to ``decode_bytes`` (``FER_API_DECODE_MB``),
    each counted from its header at 4 bytes per pixel (PIL keeps RGB in 32 bits): photos
    of a few megapixels never wait for it, 49 M pixel PNGs (~200 MB each decoded) go two at
    a time, and one larger than the whole budget goes alone. So memory does not grow with
    the number of requests, nor with ``size``;
  - twice ``size`` requests are let into the thread pool (``admitted``), where they take
    the slots file by file (``slot``, then ``decoding``): a freed slot goes straight to a
    waiting thread, without a round trip through the event loop.

  Each wait (at the door, for a slot, for decode memory) lasts up to ``timeout_s``
  (``FER_API_QUEUE_TIMEOUT_S``); then the request gets 503 with Retry-After.
* ``stopping``: a ``threading.Event`` the server sets on SIGTERM (``server.ApiServer``). Work
  in progress stops at the next file or video frame and answers 503, waiting requests stop
  waiting: shutdown does not wait for a long request to end.
* Memory given back: glibc keeps what a large decode freed in its heaps, so after eight
  49 M pixel PNGs the server stayed 360-460 MB larger than before them (and its peak grew
  by 200 MB more with each further round). ``release_memory`` (``malloc_trim``) runs after
  any image of ``TRIM_PIXELS`` or more; with glibc's default of 8 arenas per core, 40-70 MB
  were still kept, in the arenas of the many worker threads: ``limit_arenas`` (``serve``
  calls it first) caps them at ``ARENAS``, as ``MALLOC_ARENA_MAX`` would, and the server
  came back within 5 MB of where it started, round after round.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import io
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

from fastapi import HTTPException
from PIL import Image

T = TypeVar("T")

POLL_S = 0.25  # how often a waiting request looks at ``stopping``
TRIM_PIXELS = 4_000_000  # images this large give their memory back to the system once analysed
BYTES_PER_PIXEL = 4  # what PIL holds per pixel of an RGB or RGBA image
M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2
SHUTDOWN_DETAIL = "the server is shutting down: send the request again in a moment"


class ShuttingDown(Exception):
    """The server got SIGTERM while this request waited or worked: it answers 503."""


def shutting_down_error() -> HTTPException:
    return HTTPException(503, SHUTDOWN_DETAIL, headers={"Retry-After": "5", "Connection": "close"})


def default_slots() -> int:
    """One analysis per core this process may run on, and one more."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores) + 1


def decoded_bytes(data: bytes) -> int:
    """What decoding ``data`` takes, from its header (0 for what is not an image: it fails early)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Exception:  # not an image, or a broken header: the analysis says which
        return 0
    return BYTES_PER_PIXEL * width * height


async def wait_unless_stopping(awaitable: Awaitable[T], timeout_s: float, stopping: threading.Event) -> T:
    """``awaitable``'s result; ``TimeoutError`` after ``timeout_s``, ``ShuttingDown`` once ``stopping``
    is set (looked at every ``POLL_S``). The awaitable is cancelled when it does not finish."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(awaitable)
    deadline = loop.time() + timeout_s
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            done, _ = await asyncio.wait({task}, timeout=min(POLL_S, remaining))
            if done:
                return task.result()
            if stopping.is_set():
                raise ShuttingDown
    finally:
        if not task.done():
            task.cancel()


class AnalysisSlots:
    """``size`` analyses at once within ``decode_bytes`` of decoded images; made in the server's
    event loop (the app's lifespan)."""

    def __init__(self, size: int, decode_bytes: int, timeout_s: float, stopping: threading.Event):
        if size < 1 or decode_bytes < 1 or timeout_s <= 0:
            raise ValueError("an API needs an analysis slot, decode memory and a queue timeout above 0")
        self.size, self.decode_bytes, self.timeout_s, self.stopping = size, decode_bytes, timeout_s, stopping
        self._door = asyncio.Semaphore(2 * size)
        self._slots = threading.BoundedSemaphore(size)
        self._memory = threading.Condition()
        self.decoding_bytes = 0  # held by the images being decoded and analysed now

    def busy_error(self, what: str = "an analysis slot") -> HTTPException:
        retry = max(1, math.ceil(self.timeout_s / 4))
        detail = (
            f"server busy: {what} did not come free within {self.timeout_s:g} s "
            f"(FER_API_ANALYSES={self.size}, FER_API_DECODE_MB={self.decode_bytes / 2**20:g}); try again in {retry} s"
        )
        return HTTPException(503, detail, headers={"Retry-After": str(retry)})

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """In the event loop: let a request on to the thread pool, where it takes ``slot``s;
        503 (``busy_error``) when it cannot go within ``timeout_s``, or during shutdown."""
        try:
            await wait_unless_stopping(self._door.acquire(), self.timeout_s, self.stopping)
        except TimeoutError:
            raise self.busy_error() from None
        except ShuttingDown:
            raise shutting_down_error() from None
        try:
            yield
        finally:
            self._door.release()

    def _waiting(self, deadline: float, what: str) -> float:
        """Seconds to wait next (at most ``POLL_S``); 503 once past ``deadline`` or stopping."""
        if self.stopping.is_set():
            raise shutting_down_error()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self.busy_error(what)
        return min(POLL_S, remaining)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """In a worker thread (of an ``admitted`` request): hold one analysis slot."""
        deadline = time.monotonic() + self.timeout_s
        while not self._slots.acquire(timeout=self._waiting(deadline, "an analysis slot")):
            pass
        try:
            yield
        finally:
            self._slots.release()

    @contextlib.contextmanager
    def decoding(self, nbytes: int) -> Iterator[None]:
        """In a slot: hold ``nbytes`` of the decode memory (all of it when more is asked)."""
        nbytes = min(nbytes, self.decode_bytes)
        deadline = time.monotonic() + self.timeout_s
        with self._memory:
            while self.decoding_bytes + nbytes > self.decode_bytes:
                self._memory.wait(self._waiting(deadline, "memory to decode this image"))
            self.decoding_bytes += nbytes
        try:
            yield
        finally:
            with self._memory:
                self.decoding_bytes -= nbytes
                self._memory.notify_all()


def stop_check(stopping: threading.Event) -> Callable[..., None]:
    """A progress callback that ends long work (a video) once the server is stopping."""

    def check(*_: object) -> None:
        if stopping.is_set():
            raise ShuttingDown

    return check


@functools.cache
def _libc_function(name: str) -> Callable[..., int] | None:
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path) if path else None
    except OSError:
        return None
    return getattr(libc, name, None)  # glibc's malloc_trim and mallopt


def release_memory() -> bool:
    """Return the heap memory freed so far to the system (glibc); False where it cannot."""
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX`` would), unless that variable is set;
    False where it cannot. Effective only before the process's threads first allocate."""
    mallopt = _libc_function("mallopt")
    if mallopt is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
