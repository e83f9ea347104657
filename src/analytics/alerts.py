"""Live alerts out of the browser: JSON events POSTed to a webhook, never blocking the caller.

``AlertEvent`` is what is sent: ``kind``, ``message`` and a JSON ``payload`` (the live
alert's: kind, message, time in UTC ISO 8601, window_seconds, duration_seconds, share,
threshold, group, grouping, counts per label, faces).

``AlertNotifier(url)`` delivers them. ``notify(event)`` only appends to a bounded queue and
returns: a background sender thread (started on demand, gone after a minute idle) POSTs
each event with ``httpx``, a timeout per attempt, and retries with exponential back-off
(``backoff``, ``2 * backoff``, ...) on connection errors, timeouts, 5xx and 429 (whose
``Retry-After`` is honoured up to ``MAX_DELAY``); any other 3xx or 4xx is final. When the
queue is full the oldest event is dropped and counted (``dropped``). Every event's outcome,
dropped ones included, goes to ``on_result(event, delivered, error)`` from the sender
thread, e.g. to record it in the results store::

    notifier.on_result = lambda e, ok, err: store.record_alert(
        kind=e.kind, message=e.message, payload=e.payload, delivered=ok, error=err)

``shared_notifier(url)`` gives one notifier per URL for the whole process (what
``src.streams.live.LiveSession`` uses when ``FER_ALERT_WEBHOOK`` is set); ``set_result_callback``
sets ``on_result`` for those. The URL may carry a secret token, so messages never show it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from src import config

LOGGER = logging.getLogger(__name__)

ResultCallback = Callable[["AlertEvent", bool, str], None]
MAX_DELAY = 60.0  # seconds: the longest wait between attempts, whatever Retry-After says
IDLE_SECONDS = 60.0  # the sender thread ends after this long without events
USER_AGENT = "fer-analytics-alerts/1"


@dataclass(frozen=True)
class AlertEvent:
    """One alert: ``payload`` is the JSON body sent (it repeats ``kind`` and ``message``)."""

    kind: str
    message: str
    payload: dict[str, Any] = field(default_factory=dict)


def utc_iso(timestamp: float) -> str:
    """A POSIX time as UTC ISO 8601 (``2024-05-01T12:00:00.250000+00:00``)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def live_alert_event(
    message: str,
    *,
    when: float,
    window_seconds: float,
    duration_seconds: float,
    share: float,
    threshold: float,
    group: str,
    grouping: str,
    counts: Mapping[str, int],
    faces: int,
    kind: str = "live_alert",
) -> AlertEvent:
    """The event of a live alert that just fired (the figures are over the run that triggered it)."""
    payload = {
        "kind": kind,
        "message": message,
        "time": utc_iso(when),
        "window_seconds": float(window_seconds),
        "duration_seconds": round(float(duration_seconds), 3),
        "share": round(float(share), 4),
        "threshold": float(threshold),
        "group": group,
        "grouping": grouping,
        "counts": {str(k): int(v) for k, v in counts.items()},
        "faces": int(faces),
    }
    return AlertEvent(kind, message, payload)


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL; ``ValueError`` (without the URL) otherwise."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except Exception:
        raise ValueError("the alert webhook is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("the alert webhook must be an http:// or https:// URL")
    return url


class AlertNotifier:
    """Delivers ``AlertEvent`` s to one webhook URL from a background thread (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = config.ALERT_WEBHOOK_TIMEOUT,
        attempts: int = config.ALERT_WEBHOOK_ATTEMPTS,
        backoff: float = config.ALERT_WEBHOOK_BACKOFF,
        max_queue: int = config.ALERT_WEBHOOK_QUEUE,
        on_result: ResultCallback | None = None,
        idle_seconds: float = IDLE_SECONDS,
    ):
        self.url = check_url(url)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = max(0.0, backoff)
        self.max_queue = max(1, max_queue)
        self.on_result = on_result
        self.idle_seconds = idle_seconds
        self.delivered = 0  # outcomes so far; dropped events count as failed too
        self.failed = 0
        self.dropped = 0
        self._queue: deque[AlertEvent] = deque()
        self._dropped: list[AlertEvent] = []  # reported from the sender thread, not the caller's
        self._busy = 0  # events taken off the queue and not yet reported
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # -- caller side (e.g. the video thread): never waits on the network ----------------

    def notify(self, event: AlertEvent) -> None:
        """Queue ``event`` for delivery and return at once; the oldest is dropped when the queue is full."""
        with self._cond:
            if self._closed.is_set():
                self._dropped.append(event)
                self.dropped += 1
                return
            if len(self._queue) >= self.max_queue:
                self._dropped.append(self._queue.popleft())
                self.dropped += 1
            self._queue.append(event)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def pending(self) -> int:
        """Events queued or being delivered."""
        with self._cond:
            return len(self._queue) + len(self._dropped) + self._busy

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event notified so far has its outcome reported; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._queue or self._dropped or self._busy), timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop: the event being sent gets no more retries, the queued ones are reported as not delivered."""
        self._closed.set()
        with self._cond:
            self._dropped.extend(self._queue)
            self.dropped += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._report_dropped()  # when no sender thread was running

    # -- the sender thread --------------------------------------------------------------

    def _run(self) -> None:
        import httpx

        client = httpx.Client(timeout=self.timeout, follow_redirects=False, headers={"user-agent": USER_AGENT})
        try:
            while True:
                with self._cond:
                    ready = self._cond.wait_for(
                        lambda: self._queue or self._dropped or self._closed.is_set(), self.idle_seconds
                    )
                    if not ready:
                        self._thread = None  # idle: the next notify starts a new sender
                        return
                    event = self._queue.popleft() if self._queue and not self._closed.is_set() else None
                    self._busy += event is not None
                self._report_dropped()
                if event is None:
                    if self._closed.is_set():
                        with self._cond:
                            self._thread = None
                        return
                    continue
                try:
                    delivered, error = self._deliver(client, event)
                except Exception as exc:  # whatever happens, the thread lives on
                    delivered, error = False, f"{type(exc).__name__}: {exc}"
                self._report(event, delivered, error)
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
        finally:
            client.close()

    def _deliver(self, client, event: AlertEvent) -> tuple[bool, str]:
        import httpx

        body = json.dumps(event.payload, ensure_ascii=False).encode("utf-8")
        error = ""
        for attempt in range(1, self.attempts + 1):
            delay = self.backoff * 2 ** (attempt - 1)
            try:
                response = client.post(self.url, content=body, headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return True, ""
                error = f"HTTP {status}"
                if status == 429:
                    delay = max(delay, _retry_after(response.headers.get("retry-after")))
                elif status < 500:
                    return False, f"{error} (not retried)"
            if attempt == self.attempts:
                break
            if self._closed.wait(min(delay, MAX_DELAY)):
                return False, f"{error}; stopped before retrying"
        return False, f"{error} (after {self.attempts} attempt{'s' if self.attempts != 1 else ''})"

    def _report_dropped(self) -> None:
        with self._cond:
            dropped, self._dropped = self._dropped, []
            self._busy += len(dropped)  # flush() waits for their reports too
        if dropped:  # one log line per batch: a stuck receiver can drop thousands
            LOGGER.warning("%d alert(s) dropped: the queue was full or the notifier closed", len(dropped))
        for event in dropped:
            self._report(event, False, "dropped: the alert queue was full or the notifier closed", log=False)
        if dropped:
            with self._cond:
                self._busy -= len(dropped)
                self._cond.notify_all()

    def _report(self, event: AlertEvent, delivered: bool, error: str, log: bool = True) -> None:
        with self._cond:
            if delivered:
                self.delivered += 1
            else:
                self.failed += 1
        if not delivered and log:
            LOGGER.warning("alert %s not delivered to the webhook: %s", event.kind, error)
        callback = self.on_result
        if callback is None:
            return
        try:
            callback(event, delivered, error)
        except Exception:
            LOGGER.exception("alert result callback failed")


def _retry_after(value: str | None) -> float:
    """Seconds from a numeric Retry-After header (dates and garbage count as 0)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


_SHARED: dict[str, AlertNotifier] = {}
_SHARED_LOCK = threading.Lock()
_RESULT_CALLBACK: ResultCallback | None = None


def shared_notifier(url: str) -> AlertNotifier | None:
    """The process-wide notifier of ``url`` (settings from config); None, with a warning, for a bad URL."""
    with _SHARED_LOCK:
        notifier = _SHARED.get(url)
        if notifier is None:
            try:
                notifier = AlertNotifier(url, on_result=_RESULT_CALLBACK)
            except ValueError as exc:
                LOGGER.warning("live alerts stay in the browser: %s", exc)
                return None
            _SHARED[url] = notifier
        return notifier


def set_result_callback(callback: ResultCallback | None) -> None:
    """``on_result`` for the shared notifiers, those made so far and later ones."""
    global _RESULT_CALLBACK
    with _SHARED_LOCK:
        _RESULT_CALLBACK = callback
        for notifier in _SHARED.values():
            notifier.on_result = callback


__all__ = [
    "AlertEvent",
    "AlertNotifier",
    "check_url",
    "live_alert_event",
    "set_result_callback",
    "shared_notifier",
    "utc_iso",
]
