"""Webhook alerts (src/analytics/alerts.py) against a real HTTP receiver on 127.0.0.1, and the live session's events.

The receiver is ``http.server`` in a thread, scripted per test: status codes to answer
in turn, or a hang until the test releases it. Back-off is 10 ms, so retries are quick;
waits are bounded (``flush``, events) and nothing asserts on wall-clock durations.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from live_support import fake_session, feed, onehot

from src import config
from src.analytics import alerts, groups
from src.analytics.alerts import AlertEvent, AlertNotifier, live_alert_event

WAIT = 10.0  # seconds: upper bound of every wait, never reached when things work


class Receiver:
    """A webhook receiver: records every POST and answers with ``statuses`` in turn (then 200)."""

    def __init__(self, statuses=(), hang: bool = False, headers: dict | None = None):
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.requests: list[dict] = []
        self.entered = threading.Event()  # a request reached the handler
        self.release = threading.Event()  # lets hanging requests answer
        if not hang:
            self.release.set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.requests.append(
                        {"body": body, "json": json.loads(body), "content_type": self.headers.get("content-type")}
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.entered.set()
                receiver.release.wait(WAIT)
                self.send_response(status)
                for key, value in receiver.headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=secret"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


class Results:
    """An ``on_result`` callback that keeps every outcome."""

    def __init__(self):
        self.items: list[tuple[AlertEvent, bool, str]] = []

    def __call__(self, event, delivered, error):
        self.items.append((event, delivered, error))


_NOTIFIERS: list[AlertNotifier] = []


@pytest.fixture(autouse=True)
def _close_notifiers():
    yield
    while _NOTIFIERS:
        _NOTIFIERS.pop().close(WAIT)


def notifier_for(url: str, **kwargs) -> tuple[AlertNotifier, Results]:
    """A notifier with a 10 ms back-off that records its outcomes (closed after the test)."""
    results = Results()
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("timeout", WAIT)
    notifier = AlertNotifier(url, on_result=results, **kwargs)
    _NOTIFIERS.append(notifier)
    return notifier, results


def event(n: int = 1) -> AlertEvent:
    return live_alert_event(
        f"alert {n}: Negative emotions on 80% of faces",
        when=1_700_000_000.25 + n,
        window_seconds=10.0,
        duration_seconds=11.0,
        share=0.8,
        threshold=0.5,
        group="negative",
        grouping="sentiment",
        counts={"sad": 8, "happy": 2},
        faces=10,
    )


# --- delivery ------------------------------------------------------------------------


def test_delivered_event_is_the_json_payload(receiver):
    r = receiver()
    notifier, results = notifier_for(r.url)
    sent = event()
    notifier.notify(sent)
    assert notifier.flush(WAIT)
    assert results.items == [(sent, True, "")]
    (request,) = r.requests
    assert request["content_type"] == "application/json"
    assert request["json"] == {
        "kind": "live_alert",
        "message": "alert 1: Negative emotions on 80% of faces",
        "time": "2023-11-14T22:13:21.250000+00:00",
        "window_seconds": 10.0,
        "duration_seconds": 11.0,
        "share": 0.8,
        "threshold": 0.5,
        "group": "negative",
        "grouping": "sentiment",
        "counts": {"sad": 8, "happy": 2},
        "faces": 10,
    }
    assert datetime.fromisoformat(request["json"]["time"]).utcoffset().total_seconds() == 0
    assert (notifier.delivered, notifier.failed, notifier.dropped) == (1, 0, 0)
    notifier.close()


def test_server_errors_are_retried_until_delivered(receiver):
    r = receiver(statuses=[500, 500])
    notifier, results = notifier_for(r.url, attempts=4)
    notifier.notify(event())
    assert notifier.flush(WAIT)
    assert [(ok, err) for _, ok, err in results.items] == [(True, "")]
    assert len(r.requests) == 3 and len({q["body"] for q in r.requests}) == 1  # the same event each time


def test_gives_up_after_the_attempts_and_names_the_last_error(receiver):
    r = receiver(statuses=[503, 503, 503])
    notifier, results = notifier_for(r.url, attempts=3)
    notifier.notify(event())
    assert notifier.flush(WAIT)
    assert [(ok, err) for _, ok, err in results.items] == [(False, "HTTP 503 (after 3 attempts)")]
    assert len(r.requests) == 3 and notifier.failed == 1


def test_client_errors_are_not_retried_but_429_is(receiver):
    r = receiver(statuses=[404])
    notifier, results = notifier_for(r.url, attempts=4)
    notifier.notify(event())
    assert notifier.flush(WAIT)
    assert [(ok, err) for _, ok, err in results.items] == [(False, "HTTP 404 (not retried)")]
    assert len(r.requests) == 1

    busy = receiver(statuses=[429], headers={"retry-after": "0"})
    notifier, results = notifier_for(busy.url, attempts=4)
    notifier.notify(event())
    assert notifier.flush(WAIT)
    assert [ok for _, ok, _ in results.items] == [True] and len(busy.requests) == 2


def test_unreachable_receiver_fails_without_showing_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    notifier, results = notifier_for(f"http://127.0.0.1:{port}/hook?token=secret", attempts=2)
    notifier.notify(event())
    assert notifier.flush(WAIT)
    ((_, ok, error),) = results.items
    assert not ok and error.startswith("ConnectError") and error.endswith("(after 2 attempts)")
    assert "secret" not in error


def test_notify_returns_while_the_receiver_hangs(receiver):
    r = receiver(hang=True)
    notifier, results = notifier_for(r.url)
    notifier.notify(event(1))
    assert r.entered.wait(WAIT)  # the sender is inside the POST, and the receiver holds it
    notifier.notify(event(2))  # returns although the receiver has not answered
    assert not r.release.is_set() and results.items == [] and notifier.pending() == 2
    r.release.set()
    assert notifier.flush(WAIT)
    assert [(e.message[:7], ok) for e, ok, _ in results.items] == [("alert 1", True), ("alert 2", True)]


def test_a_full_queue_drops_the_oldest_and_counts_it(receiver):
    r = receiver(hang=True)
    notifier, results = notifier_for(r.url, max_queue=2)
    notifier.notify(event(1))
    assert r.entered.wait(WAIT)  # event 1 is being sent: the queue is empty again
    for n in (2, 3, 4):
        notifier.notify(event(n))
    assert notifier.dropped == 1
    r.release.set()
    assert notifier.flush(WAIT)
    outcome = {e.message[:7]: (ok, err) for e, ok, err in results.items}
    assert outcome == {
        "alert 1": (True, ""),
        "alert 2": (False, "dropped: the alert queue was full or the notifier closed"),
        "alert 3": (True, ""),
        "alert 4": (True, ""),
    }
    assert [q["json"]["message"][:7] for q in r.requests] == ["alert 1", "alert 3", "alert 4"]


def test_close_reports_what_was_never_sent_and_callback_errors_are_contained(receiver):
    r = receiver(hang=True)
    calls = []

    def fragile(event, delivered, error):
        calls.append((event.message[:7], delivered))
        raise RuntimeError("store is down")

    notifier = AlertNotifier(r.url, backoff=0.01, timeout=WAIT, on_result=fragile)
    notifier.notify(event(1))
    assert r.entered.wait(WAIT)
    notifier.notify(event(2))
    r.release.set()
    notifier.close(WAIT)
    assert sorted(calls) == [("alert 1", True), ("alert 2", False)]
    notifier.notify(event(3))  # after close: reported, never sent
    notifier.close(WAIT)
    assert ("alert 3", False) in calls and len(r.requests) == 1


def test_webhook_urls_are_checked_and_shared(receiver):
    with pytest.raises(ValueError, match="http:// or https://"):
        AlertNotifier("ftp://example.org/hook")
    with pytest.raises(ValueError, match="http:// or https://"):
        AlertNotifier("not a url")
    assert alerts.shared_notifier("file:///etc/passwd") is None
    r = receiver()
    shared = alerts.shared_notifier(r.url)
    assert shared is alerts.shared_notifier(r.url) and shared.attempts == config.ALERT_WEBHOOK_ATTEMPTS
    results = Results()
    alerts.set_result_callback(results)
    try:
        shared.notify(event())
        assert shared.flush(WAIT) and [ok for _, ok, _ in results.items] == [True]
    finally:
        alerts.set_result_callback(None)


# --- the live session ----------------------------------------------------------------


def test_live_alert_sends_one_event_per_episode(receiver):
    r = receiver()
    notifier, results = notifier_for(r.url)
    session, recognizer, _ = fake_session(notifier=notifier, alert_seconds=10.0, alert_threshold=0.5)
    t = feed(session, recognizer, "happy", 1_000.0, 5)
    t = feed(session, recognizer, "sad", t, 20)  # on after 10 s, and stays on for 10 more
    assert session.snapshot(now=t).alert
    assert notifier.flush(WAIT)
    (request,) = r.requests
    payload = request["json"]
    assert (payload["kind"], payload["group"], payload["grouping"]) == ("live_alert", "negative", "sentiment")
    assert (payload["threshold"], payload["window_seconds"], payload["share"]) == (0.5, 10.0, 1.0)
    assert payload["message"].startswith("Negative emotions on 100% of faces for the last 10 s (sad 100%")
    assert payload["counts"]["sad"] == payload["faces"] > 0 and payload["counts"]["happy"] == 0
    # The frame's time: sad dominates from second 1,006 (the smoothed label turns within
    # second 1,005), and the alert fires 10 s into that run.
    assert payload["time"] == "1970-01-01T00:16:56+00:00"
    # A positive spell ends the episode; the next one is a new event.
    t = feed(session, recognizer, "happy", t, 3)
    feed(session, recognizer, "angry", t, 12)
    assert notifier.flush(WAIT)
    assert len(r.requests) == 2 and [ok for _, ok, _ in results.items] == [True, True]


def test_live_alert_on_a_custom_group_with_a_confidence_threshold(receiver):
    r = receiver()
    notifier, _ = notifier_for(r.url)
    session, recognizer, _ = fake_session(notifier=notifier, alert_group="delighted", alert_seconds=3.0)
    assert (session.alert_grouping, session.stats.alert_group) == ("custom", groups.Group("delighted", ("happy",), 0.7))
    recognizer.probs = onehot("happy", 0.6)  # happy, but not sure enough to be delighted
    for i in range(25):
        session.process(np.zeros((480, 640, 3), np.uint8), now=1_000.0 + i / 5)
    assert not session.snapshot(now=1_005.0).alert
    recognizer.probs = onehot("happy", 0.95)
    session.pipeline.reset()  # a fresh track, so no smoothing with the unsure frames
    for i in range(25):
        session.process(np.zeros((480, 640, 3), np.uint8), now=1_005.0 + i / 5)
    snap = session.snapshot(now=1_010.0)
    assert snap.alert and snap.alert_group == "delighted"
    assert snap.alert_reason.startswith('Group "delighted" on 100% of faces at 70% confidence or more')
    assert notifier.flush(WAIT)
    (request,) = r.requests
    assert (request["json"]["group"], request["json"]["grouping"]) == ("delighted", "custom")


def test_nothing_is_sent_without_a_webhook(receiver):
    assert config.ALERT_WEBHOOK == ""  # the suite runs without one
    session, recognizer, _ = fake_session()
    assert session.notifier is None
    t = feed(session, recognizer, "sad", 1_000.0, 15)
    assert session.snapshot(now=t).alert  # the browser alert is unchanged
    r = receiver()
    configured, _, _ = fake_session(alert_webhook=r.url)
    assert configured.notifier is alerts.shared_notifier(r.url)


def test_the_sender_thread_ends_when_idle_and_comes_back(receiver):
    r = receiver()
    notifier, results = notifier_for(r.url, idle_seconds=0.05)
    notifier.notify(event(1))
    assert notifier.flush(WAIT)
    sender = notifier._thread
    if sender is not None:
        sender.join(WAIT)  # idle for 50 ms: the thread returns
    assert notifier._thread is None
    notifier.notify(event(2))
    assert notifier.flush(WAIT)
    assert [ok for _, ok, _ in results.items] == [True, True] and len(r.requests) == 2
