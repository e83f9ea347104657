"""The headless camera worker: a video file, a capture device or a network stream, read for hours,
analysed by the live camera's pipeline and recorded in the results store.

Three small parts:

* ``parse_source`` tells what SOURCE is: a file, a capture device (``/dev/video0``, or an index),
  or a network URL (RTSP, HTTP, UDP, TCP, RTMP, SRT...: whatever FFmpeg reads), and
  ``open_options`` gives the FFmpeg options that bound every wait on it (per protocol).
* ``StreamReader`` runs in its own thread: ``av.open`` with an open and a read timeout, demuxes
  and decodes, and puts every frame in a one-slot ``LatestFrame``: a frame the analysis has not
  taken yet is replaced, so the newest one wins and nothing queues. When a stream drops or ends it
  reconnects with capped exponential back-off with jitter (``Backoff``), one log line per
  attempt; a file ends the watch, or is replayed (``loop``), at its own pace (frame timestamps).
* ``CameraWorker`` takes the newest frame at most ``fps`` times a second through a
  ``LiveSession`` (the dashboard camera's pipeline: detection every Nth frame, tracking,
  smoothing, the webhook alert) and, every second, hands the finished seconds to a
  ``LiveRecorder`` (one small transaction per flush), renewing the run's lease while nothing
  arrives. ``stop()`` (a signal handler may call it) ends ``run()`` within a second or so: the
  last seconds are flushed and the run is closed ``ok``.

Memory stays flat: one frame slot, the session's fixed per-second window, counters, and no list
that grows with time. The stored run is a ``live`` run tagged ``camera`` (``CAMERA_TAG``).
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from src import config
from src.analytics.persist import LiveRecorder, failure

LOGGER = logging.getLogger(__name__)

CAMERA_TAG = "camera"  # the tag of runs this worker stores (their source stays "live")
DEFAULT_FPS = 5.0  # frames analysed per second, at most
DEFAULT_TIMEOUT = 5.0  # seconds without data before a stream counts as lost
DEFAULT_BACKOFF = 1.0  # seconds before the first reconnection attempt (then doubled)
DEFAULT_BACKOFF_MAX = 30.0  # the longest wait between attempts
TICK = 0.25  # seconds: how often the analysis loop looks at the stop flag, at the least

FILE, DEVICE, NETWORK = "file", "device", "network"


class SourceError(Exception):
    """A source that cannot be read and will not become readable by waiting (no such file,
    not a video, a stream given up on); one line for the user."""


# ---------------------------------------------------------------------------
# What SOURCE is, and how to open it
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A source to read: ``url`` as FFmpeg takes it, its ``kind`` (file, device, network),
    the demuxer (``format``, None to let FFmpeg probe) and the user's extra FFmpeg options."""

    url: str
    kind: str
    format: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower() if self.kind == NETWORK else ""

    @property
    def label(self) -> str:
        """The source as logs show it: a password in a URL is replaced by ***."""
        return printable_url(self.url) if self.kind == NETWORK else self.url


def printable_url(url: str) -> str:
    """``url`` without the password of its user part (``rtsp://admin:***@camera/stream``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def parse_source(text: str, input_format: str | None = None, options: Mapping[str, str] | None = None) -> Source:
    """What SOURCE names: ``scheme://...`` a network stream (``file://`` a file), a number a
    capture device (``0`` is ``/dev/video0``), ``/dev/...`` a device, anything else a file,
    which must exist. Raises ``SourceError`` for a file or device that is not there."""
    text = text.strip()
    if not text:
        raise SourceError("no source given: a video file, a camera device or a stream URL")
    options = dict(options or {})
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme == "file":
        text, scheme = urlsplit(text).path, ""
    if scheme:
        return Source(text, NETWORK, input_format, options)
    if text.isdigit():
        if sys.platform == "darwin":
            return Source(f"{text}:none", DEVICE, input_format or "avfoundation", options)
        text = f"/dev/video{text}"
    if text.startswith("/dev/"):
        if not os.path.exists(text):
            raise SourceError(f"no such camera device: {text}")
        return Source(text, DEVICE, input_format or ("v4l2" if sys.platform.startswith("linux") else None), options)
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"no such file: {text}")
    if path.is_dir():
        raise SourceError(f"{text} is a folder, not a video file")
    return Source(str(path), FILE, input_format, options)


def open_options(source: Source, timeout: float) -> dict[str, str]:
    """The FFmpeg options of ``source``: a socket timeout in the option its protocol reads
    (microseconds), then the user's options, which win."""
    micros = str(max(1, int(timeout * 1_000_000)))
    scheme = source.scheme
    if scheme in ("rtsp", "rtsps"):
        options = {"timeout": micros}  # the RTSP demuxer's socket timeout (``stimeout`` before FFmpeg 5)
    elif scheme in ("udp", "rtp"):
        # UDP's read timeout; a reader that falls behind drops packets instead of failing.
        options = {"timeout": micros, "overrun_nonfatal": "1"}
    elif source.kind == NETWORK:
        options = {"rw_timeout": micros}  # every other protocol: libavformat's read/write timeout
    else:
        options = {}
    options.update(source.options)
    return options


def _reason(exc: BaseException) -> str:
    """One line for an FFmpeg error: its text without the URL (which may hold a password)."""
    import av

    if isinstance(exc, av.error.ExitError):
        return "timed out waiting for data"
    text = getattr(exc, "strerror", None) or ""
    if not text and str(exc).strip():
        text = str(exc).strip().splitlines()[0]
    return text or type(exc).__name__


def check_source(source: Source, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Fail fast on a file that is not a video (``SourceError``); devices and streams are
    checked when read, where a failure is retried."""
    if source.kind != FILE:
        return
    container = _open(source, timeout)
    container.close()


def _open(source: Source, timeout: float):
    """``av.open`` with both timeouts; a file's failure as ``SourceError``, others raised as they are."""
    import av

    try:
        container = av.open(
            source.url,
            format=source.format,
            options=open_options(source, timeout),
            timeout=(max(2 * timeout, 1.0), timeout),
        )
    except (av.FFmpegError, OSError) as exc:
        if source.kind != FILE:
            raise
        if isinstance(exc, av.error.InvalidDataError):
            raise SourceError(f"not a video: {source.label} (FFmpeg cannot read it)") from None
        raise SourceError(f"cannot read {source.label}: {_reason(exc)}") from None
    if not container.streams.video:
        container.close()
        if source.kind == FILE:
            raise SourceError(f"not a video: {source.label} has no video stream")
        raise av.error.InvalidDataError(1094995529, "no video stream in it")
    return container


# ---------------------------------------------------------------------------
# Reading: back-off, the frame slot, the reader thread
# ---------------------------------------------------------------------------


class Backoff:
    """Waits before reconnection attempts: ``initial``, doubled each attempt up to ``cap``, each
    scaled by a random factor in [1 - jitter, 1] so many workers do not retry in step."""

    def __init__(
        self,
        initial: float = DEFAULT_BACKOFF,
        cap: float = DEFAULT_BACKOFF_MAX,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ):
        if not initial > 0 or cap < initial or not 0 <= jitter < 1:
            raise ValueError("back-off needs 0 < initial <= cap and 0 <= jitter < 1")
        self.initial, self.cap, self.jitter = initial, cap, jitter
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The wait before the next attempt (and count it)."""
        self.attempts += 1
        base = min(self.cap, self.initial * 2.0 ** min(self.attempts - 1, 60))
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempts = 0


class LatestFrame:
    """A one-frame mailbox between the reader and the analysis: ``put`` replaces a frame not yet
    taken (counted in ``dropped``), ``take`` waits for one. Never holds more than one frame."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Any = None
        self.received = 0
        self.dropped = 0

    def put(self, frame: Any) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.received += 1
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> Any:
        """The newest frame (emptying the slot), or None when none came within ``timeout``."""
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def wake(self) -> None:
        """Let a waiting ``take`` return now (e.g. on stop)."""
        with self._cond:
            self._cond.notify_all()


class StreamReader(threading.Thread):
    """Reads ``source`` into ``slot`` until stopped, the source ends (a file without ``loop``)
    or ``max_retries`` attempts in a row failed (None: retry for ever).

    An attempt fails when opening fails or the connection ends before a frame arrived; a frame
    resets the back-off. ``error`` says why reading stopped when it was not asked to;
    ``connected`` whether any frame ever arrived.
    """

    def __init__(
        self,
        source: Source,
        slot: LatestFrame,
        *,
        stop: threading.Event | None = None,
        loop: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        backoff: Backoff | None = None,
        log: logging.Logger = LOGGER,
    ):
        super().__init__(name=f"camera-reader {source.label}", daemon=True)
        self.source, self.slot, self.loop, self.timeout = source, slot, loop, timeout
        self.max_retries = max_retries
        self.backoff = backoff or Backoff()
        self.log = log
        self.stop_event = stop or threading.Event()
        self.error = ""
        self.connected = False  # a frame has arrived, ever
        self.online = False  # frames are arriving now
        self.reconnects = 0  # times the stream came back after a drop
        self.replays = 0  # times a looped file started over

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # the thread must say why it ended, never die silently
            self.log.exception("reading %s failed", self.source.label)
            self.error = f"reading {self.source.label} failed: {type(exc).__name__}: {exc}"
        finally:
            self.online = False
            self.slot.wake()

    def _run(self) -> None:
        import av

        failures = 0  # attempts in a row that brought no frame
        reason = ""
        lost_at: float | None = None  # monotonic time the stream was lost, until it is back
        while not self.stop_event.is_set():
            if failures:
                if self.max_retries is not None and failures > self.max_retries:
                    plural = "s" * (failures != 1)
                    self.error = f"cannot read {self.source.label} after {failures} attempt{plural}: {reason}"
                    return
                delay = self.backoff.next()
                self.log.warning(
                    "%s: attempt %d failed (%s); next in %.1f s", self.source.label, failures, reason, delay
                )
                if self.stop_event.wait(delay):
                    return
            try:
                container = _open(self.source, self.timeout)
            except SourceError as exc:
                self.error = str(exc)
                return
            except (av.FFmpegError, OSError) as exc:
                failures, reason = failures + 1, _reason(exc)
                continue
            try:
                frames, reason = self._read(container, lost_at)
            finally:
                container.close()
            if self.stop_event.is_set():
                return
            if self.source.kind == FILE:
                if not frames:
                    self.error = f"not a video: {self.source.label} gave no frame ({reason})"
                    return
                if not self.loop:
                    return
                self.replays += 1
                self.log.debug("%s: replaying (%d)", self.source.label, self.replays)
                continue
            if frames:
                # Lost after frames: the first attempt is at once, the back-off starts over.
                failures, lost_at = 0, time.monotonic()
                self.backoff.reset()
                self.log.warning("%s: stream lost (%s); reconnecting", self.source.label, reason)
            else:
                failures += 1  # connected, but it ended before a frame: a failed attempt too

    def _read(self, container, lost_at: float | None) -> tuple[int, str]:
        """Decode frames into the slot until the stream ends or fails; (frames, why it ended)."""
        import av

        stream = container.streams.video[0]
        frames = 0
        start_clock: float | None = None  # monotonic time of the first frame, for a file's pace
        start_time = 0.0
        try:
            for packet in container.demux(stream):
                if self.stop_event.is_set():
                    break
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue  # one damaged packet (a lossy network) is skipped, not a lost stream
                for frame in decoded:
                    if not frames:
                        self._online(stream, lost_at)
                    frames += 1
                    if self.source.kind == FILE and frame.time is not None:
                        if start_clock is None:
                            start_clock, start_time = time.monotonic(), frame.time
                        start_clock = self._pace(start_clock, frame.time - start_time)
                    self.slot.put(frame)
        except (av.FFmpegError, OSError) as exc:
            return frames, _reason(exc)
        finally:
            self.online = False
        return frames, "end of file" if self.source.kind == FILE else "end of stream"

    def _online(self, stream, lost_at: float | None) -> None:
        self.online = True
        self.backoff.reset()
        if self.connected and self.source.kind == FILE:
            return
        rate = f", {float(stream.average_rate):g} fps" if stream.average_rate else ""
        what = f"{stream.codec_context.name} {stream.codec_context.width}x{stream.codec_context.height}{rate}"
        if lost_at is not None:
            self.reconnects += 1
            self.log.info(
                "%s: reconnected (%s) after %.1f s without frames",
                self.source.label,
                what,
                time.monotonic() - lost_at,
            )
        elif not self.connected:
            self.log.info("%s: reading (%s)", self.source.label, what)
        self.connected = True

    def _pace(self, start_clock: float, offset: float) -> float:
        """Hold a file's frame until its time comes, as a camera would deliver it; returns the
        (possibly moved) start: a jump in the timestamps restarts the clock instead of stalling."""
        delay = start_clock + offset - time.monotonic()
        if delay > 2.0 or delay < -2.0:
            return time.monotonic() - offset
        if delay > 0:
            self.stop_event.wait(delay)
        return start_clock


# ---------------------------------------------------------------------------
# The worker: analysis at a fixed rate, per-second records, lease, clean stop
# ---------------------------------------------------------------------------


class CameraRecorder(LiveRecorder):
    """A ``LiveRecorder`` whose runs carry the ``camera`` tag (and any others given): the store's
    ``live`` source, told apart from the dashboard's camera without a new source name."""

    def __init__(
        self,
        campaign: str | None = None,
        location: str | None = None,
        model_version: str = "",
        tags: Iterable[str] = (),
    ):
        super().__init__(campaign, location, model_version)
        self.fields = {**self.fields, "tags": list(dict.fromkeys([CAMERA_TAG, *tags]))}


@dataclass
class WatchReport:
    """What a watch did, for the command's last lines and exit code."""

    source: str
    run_id: Any = None
    seconds_saved: int = 0
    people_saved: int | None = None  # None: this recorder does not store people
    frames_received: int = 0
    frames_analysed: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    connected: bool = False
    error: str = ""  # why reading stopped, when it was not asked to ("" after a stop or a file's end)
    store_error: str = ""  # the last store failure still standing at the end


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory of a process in MB (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class CameraWorker:
    """Watches one source (see the module docstring): ``run()`` blocks until ``stop()``, the end of a
    file (without ``loop``), or the reader gives up; it returns a ``WatchReport``.

    ``session`` is a ``LiveSession`` with its recognizer loaded; ``store`` the results store;
    ``recorder`` the ``LiveRecorder`` that writes the seconds (a ``CameraRecorder`` by default).
    """

    def __init__(
        self,
        source: Source,
        session,
        store,
        recorder: LiveRecorder | None = None,
        *,
        fps: float = DEFAULT_FPS,
        loop: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        backoff: Backoff | None = None,
        flush_every: float = 1.0,
        status_every: float = 300.0,
        renew_every: float | None = None,
        clock: Callable[[], float] = time.time,
        log: logging.Logger = LOGGER,
    ):
        if not fps > 0:
            raise ValueError("fps must be above 0")
        self.source, self.session, self.store = source, session, store
        self.recorder = recorder if recorder is not None else CameraRecorder()
        self.interval = 1.0 / fps
        self.flush_every, self.status_every = flush_every, status_every
        lease = float(getattr(store, "lease_s", config.RUN_LEASE_S))
        self.renew_every = renew_every if renew_every is not None else min(60.0, lease / 4)
        self.clock, self.log = clock, log
        self.slot = LatestFrame()
        self._stop = threading.Event()
        self.reader = StreamReader(
            source,
            self.slot,
            stop=self._stop,
            loop=loop,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            log=log,
        )
        self.analysed = 0
        self._last_run: Any = None  # the run written last (``recorder.run_id`` is None once it is finished)
        self._failures: dict[str, int] = {}  # frame-processing errors by message (a few kinds at most)
        self._store_error = ""

    def stop(self) -> None:
        """Ask ``run`` to finish (safe from a signal handler or another thread)."""
        self._stop.set()
        self.slot.wake()

    def run(self) -> WatchReport:
        self.reader.start()
        now = time.monotonic()
        next_frame = now
        next_flush = now + self.flush_every
        next_status = now + self.status_every
        last_write = now
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now < next_frame:
                    self._stop.wait(min(next_frame - now, TICK))
                else:
                    frame = self.slot.take(TICK)
                    if frame is not None:
                        next_frame = time.monotonic() + self.interval  # start to start: --fps at most
                        self._analyse(frame)
                        del frame
                    elif not self.reader.is_alive():
                        break  # the file ended or the reader gave up, and its last frame is done
                now = time.monotonic()
                if now >= next_flush:
                    next_flush = now + self.flush_every
                    if self._flush():
                        last_write = now
                    elif now - last_write >= self.renew_every:
                        self._renew()
                        last_write = now
                if now >= next_status:
                    next_status = now + self.status_every
                    self._status()
        finally:
            self._stop.set()
            self.slot.wake()
            self.reader.join(timeout=1.0)  # a read blocked in FFmpeg ends at its timeout, on its own
            self._flush(final=True)
            self.recorder.finish(self.store, "ok")
            self._note_store_error()
            notifier = getattr(self.session, "notifier", None)
            if notifier is not None:
                notifier.flush(timeout=2.0)  # alerts queued in the last seconds get their chance
        return self.report()

    def report(self) -> WatchReport:
        return WatchReport(
            source=self.source.label,
            run_id=self.recorder.run_id or self._last_run,
            seconds_saved=self.recorder.seconds_saved,
            people_saved=getattr(self.recorder, "people_saved", None),
            frames_received=self.slot.received,
            frames_analysed=self.analysed,
            frames_dropped=self.slot.dropped,
            reconnects=self.reader.reconnects,
            connected=self.reader.connected,
            error=self.reader.error,
            store_error=self.recorder.error,
        )

    def _analyse(self, frame) -> None:
        try:
            rgb = frame.to_ndarray(format="rgb24")
            self.session.process(rgb, self.clock())
        except Exception as exc:  # one bad frame must not end hours of watching
            message = f"{type(exc).__name__}: {exc}"
            seen = self._failures.get(message, 0)
            if seen == 0:
                self.log.exception("%s: a frame could not be analysed", self.source.label)
            if len(self._failures) < 16 or message in self._failures:
                self._failures[message] = seen + 1
            return
        self.analysed += 1

    def _flush(self, final: bool = False) -> int:
        """Store the finished seconds (all of them when ``final``); how many were written."""
        before = self.recorder.run_id
        written = self.recorder.flush(self.store, self.session.stats, self.session.labels, self.clock(), final=final)
        if self.recorder.run_id is not None and self.recorder.run_id != before:
            self.log.info("%s: recording in run %s", self.source.label, self.recorder.run_id)
        if self.recorder.run_id is not None:
            self._last_run = self.recorder.run_id
        self._note_store_error()
        return written

    def _renew(self) -> None:
        """Keep the run's lease while no second is written (the stream is down, or not one frame
        was analysed): the run stays ``running`` instead of being taken for abandoned."""
        run_id = self.recorder.run_id
        if run_id is None:
            return
        from src.analytics.store import RunClosedError

        try:
            self.store.renew_lease(run_id)
        except RunClosedError as exc:
            label = self.source.label
            self.log.warning(
                "%s: run %s was closed by the store (%s); the next seconds open a new one", label, run_id, exc
            )
            self.recorder.finish(self.store)
        except Exception as exc:
            self.recorder.error = failure(exc)
        else:
            self.recorder.error = ""
        self._note_store_error()

    def _note_store_error(self) -> None:
        """One log line when the store starts failing, and one when it works again."""
        error = self.recorder.error
        if error and error != self._store_error:
            self.log.warning("%s: not saving to the results store: %s (retried)", self.source.label, error)
        elif not error and self._store_error:
            self.log.info("%s: saving to the results store again", self.source.label)
        self._store_error = error

    def _status(self) -> None:
        memory = rss_mb()
        self.log.info(
            "%s: %s; %d frames analysed, %d received, %d skipped; %d seconds stored%s%s",
            self.source.label,
            "reading" if self.reader.online else "waiting for the stream",
            self.analysed,
            self.slot.received,
            self.slot.dropped,
            self.recorder.seconds_saved,
            f" in run {self.recorder.run_id}" if self.recorder.run_id else "",
            f"; RSS {memory:.0f} MB" if memory is not None else "",
        )


__all__ = [
    "CAMERA_TAG",
    "Backoff",
    "CameraRecorder",
    "CameraWorker",
    "LatestFrame",
    "Source",
    "SourceError",
    "StreamReader",
    "WatchReport",
    "check_source",
    "open_options",
    "parse_source",
    "printable_url",
    "rss_mb",
]
