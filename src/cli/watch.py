"""``watch SOURCE --campaign NAME --location NAME``: the headless camera worker (src/streams/camera.py).

SOURCE is a video file, a capture device (``/dev/video0``, or ``0``) or a network stream
(``rtsp://``, ``http://``, ``udp://``, ``tcp://``...). Frames are analysed by the live camera's
pipeline at most ``--fps`` times a second, and each second's emotion counts go to the results
store (FER_DATABASE_URL) as a ``live`` run tagged ``camera``, with the people whose tracks
ended (``LiveRecorder``); the webhook alert (FER_ALERT_WEBHOOK) fires as on the dashboard's
live tab, its outcome stored. A dropped stream is reconnected
with back-off (for ever, or ``--max-retries`` attempts in a row); ``--loop`` replays a file.

SIGTERM or SIGINT stops it within a few seconds: the last seconds are stored, the run is marked
``ok`` and the exit code is 0. A bad source (no such file or device, not a video, unreachable
after ``--max-retries`` attempts before any frame) is one line and exit 2; a stream lost for good
after it was read, or a store that refused the last seconds, exit 74.

``--engine ray SOURCE [SOURCE ...]`` watches each source in its own Ray actor (one run each),
on this machine's cores or the cluster at ``--address``; the actors' log lines are printed here.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import shutil
import signal
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from src import config
from src.cli.common import (
    EXIT_IO_ERROR,
    UserError,
    load_recognizer,
    model_path,
    open_store,
    start_backend,
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LOG_DATE = "%Y-%m-%d %H:%M:%S"
RAY_LOG_LINES = 1000  # log lines an actor keeps for the driver to collect; older ones are dropped


# --- options ------------------------------------------------------------------------------


def _positive(kind: type) -> Callable[[str], float]:
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            number = 0
        if not number > 0:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number above 0")
        return number

    return parse


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 0")
    return number


def _option(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    return key.strip(), val


def add_parsers(sub) -> None:
    """Register ``watch`` on the top-level sub-parsers."""
    from src.streams.camera import DEFAULT_BACKOFF_MAX, DEFAULT_FPS, DEFAULT_TIMEOUT

    p = sub.add_parser(
        "watch",
        help="analyse a camera, stream or video file for hours, storing per-second counts",
        description="Read a video file, camera device or network stream, analyse its faces with the live "
        "camera's pipeline and store each second's emotion counts in the results store (FER_DATABASE_URL). "
        "Stops cleanly on SIGTERM or Ctrl-C.",
    )
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="a video file, a camera device (/dev/video0 or 0) or a stream URL (rtsp://, http://, udp://, tcp://...);"
        " several only with --engine ray",
    )
    p.add_argument("--campaign", metavar="NAME", help="campaign of the stored run")
    p.add_argument(
        "--location",
        action="append",
        metavar="NAME",
        help="location of the stored run; with several SOURCEs, once for all or once per SOURCE, in order",
    )
    p.add_argument("--tag", action="append", metavar="TAG", help="extra tag of the stored run (repeatable)")
    p.add_argument(
        "--fps",
        type=_positive(float),
        default=DEFAULT_FPS,
        help=f"frames analysed per second, at most (default {DEFAULT_FPS:g}); frames in between are skipped",
    )
    p.add_argument("--loop", action="store_true", help="replay a video file when it ends (streams ignore it)")
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds without data before a stream counts as lost (default {DEFAULT_TIMEOUT:g}; twice that to open)",
    )
    p.add_argument(
        "--max-retries",
        type=_count,
        metavar="N",
        help="give up after N failed reconnection attempts in a row (default: retry for ever)",
    )
    p.add_argument(
        "--backoff-max",
        type=_positive(float),
        default=DEFAULT_BACKOFF_MAX,
        metavar="S",
        help=f"longest wait between reconnection attempts (default {DEFAULT_BACKOFF_MAX:g} s; 1 s first, doubling)",
    )
    p.add_argument("--input-format", metavar="FMT", help="FFmpeg demuxer to use (e.g. v4l2, mjpeg); default: probed")
    p.add_argument(
        "--option",
        "-o",
        action="append",
        type=_option,
        metavar="KEY=VALUE",
        help="FFmpeg option for opening the source (repeatable), e.g. rtsp_transport=tcp, video_size=1280x720",
    )
    p.add_argument("--model", metavar="FILE", help="model file or name in models/ (default: FER_MODEL)")
    p.add_argument(
        "--status-every",
        type=float,
        default=300.0,
        metavar="S",
        help="log a status line (frames, seconds stored, memory) every S seconds (default 300; 0: never)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: one SOURCE in this process; ray: one Ray actor per SOURCE",
    )
    p.add_argument("--address", metavar="ADDRESS", help="Ray cluster to run on (default RAY_ADDRESS, else local)")
    p.add_argument(
        "--ray-cpus-per-stream",
        type=_positive(float),
        default=1.0,
        metavar="C",
        help="CPUs each stream's actor reserves (default 1)",
    )
    p.set_defaults(func=cmd_watch)


@dataclasses.dataclass(frozen=True)
class WatchSettings:
    """What every stream is watched with (picklable: it travels to Ray actors)."""

    campaign: str | None
    tags: tuple[str, ...]
    fps: float
    loop: bool
    timeout: float
    max_retries: int | None
    backoff_max: float
    input_format: str | None
    options: tuple[tuple[str, str], ...]
    status_every: float
    log_level: str


def _settings(args: argparse.Namespace) -> WatchSettings:
    return WatchSettings(
        campaign=args.campaign,
        tags=tuple(args.tag or ()),
        fps=args.fps,
        loop=args.loop,
        timeout=args.timeout,
        max_retries=args.max_retries,
        backoff_max=args.backoff_max,
        input_format=args.input_format,
        options=tuple(args.option or ()),
        status_every=args.status_every,
        log_level=args.log_level,
    )


def _locations(args: argparse.Namespace) -> list[str | None]:
    given = args.location or []
    if len(given) > 1 and len(given) != len(args.sources):
        raise UserError(f"give --location once, or once per SOURCE ({len(args.sources)}), not {len(given)} times")
    return list(given) if len(given) > 1 else [given[0] if given else None] * len(args.sources)


def _source(text: str, settings: WatchSettings):
    """SOURCE parsed and, for a file, opened once: a bad one is a user error before the model loads."""
    from src.streams.camera import SourceError, check_source, parse_source

    try:
        source = parse_source(text, settings.input_format, dict(settings.options))
        check_source(source, settings.timeout)
    except SourceError as exc:
        raise UserError(str(exc)) from None
    return source


# --- logging and signals ----------------------------------------------------------------


@contextlib.contextmanager
def _logging(level: str, handler: logging.Handler | None = None) -> Iterator[None]:
    """Log lines of ``src`` (the worker, the store, the alerts) to stderr with their time, while
    the watch runs; other libraries stay at their own settings."""
    logger = logging.getLogger("src")
    handler = handler or logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE))
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop`` once; a second one acts as it would have without this."""
    names = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; a caller elsewhere stops the worker itself
        return
    saved = {sig: signal.getsignal(sig) for sig in names}

    def handler(signum, _frame) -> None:
        for sig, previous in saved.items():
            signal.signal(sig, previous)
        logging.getLogger("src.cli.watch").info("%s: stopping (storing the last seconds)", names.get(signum, signum))
        stop()

    for sig in names:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


# --- one stream --------------------------------------------------------------------------


def _alerts_to(store) -> None:
    """Webhook outcomes recorded in the store, as the dashboard does (when a webhook is set)."""
    if config.ALERT_WEBHOOK:
        from src.analytics import alerts
        from src.analytics.persist import alert_recorder

        alerts.set_result_callback(alert_recorder(store))


def make_worker(source, settings: WatchSettings, location: str | None, recognizer, store):
    """The ``CameraWorker`` of one source with these settings."""
    from src.streams.camera import Backoff, CameraRecorder, CameraWorker
    from src.streams.live import LiveSession

    session = LiveSession(recognizer=recognizer)
    if session.alert_problem:
        logging.getLogger("src.cli.watch").warning(session.alert_problem)
    recorder = CameraRecorder(settings.campaign, location, recognizer.info.version, settings.tags)
    return CameraWorker(
        source,
        session,
        store,
        recorder,
        fps=settings.fps,
        loop=settings.loop,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        backoff=Backoff(cap=max(settings.backoff_max, 1.0)),
        status_every=settings.status_every if settings.status_every > 0 else float("inf"),
    )


def _run_status(store, run_id) -> str:
    if run_id is None:
        return ""
    try:
        run = store.get_run(run_id)
    except Exception:
        return ""
    return "" if run is None else str(run["status"])


def _summary(report, status: str) -> str:
    n = report.people_saved
    people = "" if n is None else f" and {n} {'person' if n == 1 else 'people'}"
    where = f" in run {report.run_id} ({status})" if report.run_id else " (no run: no frame was analysed)"
    return (
        f"watched {report.source}: {report.frames_analysed} frames analysed of {report.frames_received} received, "
        f"{report.reconnects} reconnection{'s' * (report.reconnects != 1)}, "
        f"{report.seconds_saved} seconds{people} stored{where}"
    )


def _exit_code(report) -> int:
    """0, or the report's failure: a source never read is the user's (exit 2), a stream lost for
    good or seconds the store refused at the end are I/O errors (74)."""
    if report.error and not report.connected:
        raise UserError(report.error)
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)
        return EXIT_IO_ERROR
    if report.store_error:
        print(f"error: the last seconds were not stored: {report.store_error}", file=sys.stderr)
        return EXIT_IO_ERROR
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    settings = _settings(args)
    locations = _locations(args)
    if args.engine == "local" and len(args.sources) > 1:
        raise UserError(f"{len(args.sources)} SOURCEs: watch one per process, or all with --engine ray")
    sources = [_source(text, settings) for text in args.sources]
    if args.engine == "ray":
        _require_ray()
    model_file = model_path(args.model)
    store = open_store()
    with _logging(settings.log_level):
        if args.engine == "ray":
            return _watch_on_ray(args, sources, locations, settings, model_file, store)
        start_backend(model_file)
        recognizer = load_recognizer(model_file)
        _alerts_to(store)
        worker = make_worker(sources[0], settings, locations[0], recognizer, store)
        with _stop_on_signals(worker.stop):
            report = worker.run()
        status = _run_status(store, report.run_id)
    print(_summary(report, status), file=sys.stderr)
    return _exit_code(report)


# --- many streams on Ray ---------------------------------------------------------------


class _LineBuffer(logging.Handler):
    """Formatted log lines kept for the driver (a bounded deque: a stuck driver costs no memory)."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self.lines: deque[str] = deque(maxlen=RAY_LOG_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.prefix + self.format(record))
        except Exception:
            self.handleError(record)

    def drain(self) -> list[str]:
        out = []
        while self.lines:
            out.append(self.lines.popleft())
        return out


class WatchActor:
    """One stream in a Ray actor: the model shipped as bytes, the store opened by URL (the
    worker's own checkout paths are not the driver's), its log lines kept for ``logs()``."""

    def __init__(
        self,
        model_files: dict[str, bytes],
        model_name: str,
        database_url: str,
        source,
        settings: WatchSettings,
        location: str | None,
        index: int,
    ):
        from src.analytics.store import Store
        from src.engine.inference import EmotionRecognizer

        self._buffer = _LineBuffer(f"[{index}] ")
        self._logging = _logging(settings.log_level, self._buffer)
        self._logging.__enter__()
        self._folder = tempfile.mkdtemp(prefix="fer-watch-model-")
        for name, data in model_files.items():
            Path(self._folder, name).write_bytes(data)
        recognizer = EmotionRecognizer(Path(self._folder, model_name))
        self.store = Store(database_url)
        _alerts_to(self.store)
        self.worker = make_worker(source, settings, location, recognizer, self.store)

    def run(self) -> dict:
        report = self.worker.run()
        return {**dataclasses.asdict(report), "status": _run_status(self.store, report.run_id)}

    def stop(self) -> None:
        self.worker.stop()

    def logs(self) -> list[str]:
        return self._buffer.drain()

    def __del__(self):
        shutil.rmtree(getattr(self, "_folder", ""), ignore_errors=True)


def _require_ray() -> None:
    from src.cli.ray_engine import RayEngineError, require_ray

    try:
        require_ray()
    except RayEngineError as exc:
        raise UserError(str(exc)) from None


def _watch_on_ray(args, sources, locations: Sequence[str | None], settings, model_file: Path, store) -> int:
    from src.cli import ray_engine
    from src.streams.camera import WatchReport

    try:
        started = ray_engine.connect(args.address)
    except ray_engine.RayEngineError as exc:
        raise UserError(str(exc)) from None
    import ray

    stop = threading.Event()
    reports: dict[int, dict] = {}
    try:
        remote = ray.remote(num_cpus=args.ray_cpus_per_stream, max_concurrency=4, max_restarts=0)(WatchActor)
        files = ray_engine._model_files(model_file)
        actors = [
            remote.remote(files, model_file.name, config.DATABASE_URL, source, settings, location, i)
            for i, (source, location) in enumerate(zip(sources, locations))
        ]
        pending = {actor.run.remote(): i for i, actor in enumerate(actors)}
        asked = False
        with _stop_on_signals(stop.set):
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                _print_logs(ray, actors)
                for ref in done:
                    i = pending.pop(ref)
                    try:
                        reports[i] = ray.get(ref)
                    except Exception as exc:
                        line = ray_engine._first_line(exc)
                        reports[i] = {**dataclasses.asdict(WatchReport(sources[i].label)), "error": line, "status": ""}
                if stop.is_set() and not asked:
                    asked = True
                    for actor in actors:
                        actor.stop.remote()
        _print_logs(ray, actors)
    finally:
        if started:
            ray_engine.shutdown()
    codes = []
    for i in sorted(reports):
        data = dict(reports[i])
        status = data.pop("status", "")
        report = WatchReport(**data)
        print(_summary(report, status), file=sys.stderr)
        try:
            codes.append(_exit_code(report))
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            codes.append(2)
    return max(codes, default=0)


def _print_logs(ray, actors) -> None:
    try:
        batches = ray.get([actor.logs.remote() for actor in actors], timeout=5.0)
    except Exception:
        return  # an actor that died says so in its report
    for lines in batches:
        for line in lines:
            print(line, file=sys.stderr)
