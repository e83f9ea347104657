"""Single source of paths, class names and thresholds.

Paths are resolved from the repository root (never the working directory).
Environment variables prefixed ``FER_`` override the defaults.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


ROOT = Path(__file__).resolve().parent.parent

MODELS_DIR = _env_path("FER_MODELS_DIR", ROOT / "models")
OUTPUTS_DIR = _env_path("FER_OUTPUTS_DIR", ROOT / "outputs")
INPUTS_DIR = _env_path("FER_INPUTS_DIR", ROOT / "inputs")
DATASETS_DIR = INPUTS_DIR / "datasets"
RUNS_DIR = _env_path("FER_RUNS_DIR", ROOT / "runs")

MODEL_FILE = _env_path("FER_MODEL", MODELS_DIR / "fer_cnn.keras")
# Pins outputs/<version>/ for the dashboard and the commands that write there; empty (the
# default) picks it automatically, see src/training/outputs.py.
OUTPUT_VERSION = os.environ.get("FER_OUTPUT_VERSION", "")

# FER2013 label order. The saved model's manifest is the authority at run time;
# this list is used when building datasets and new models.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SIZE = 48

# FER+ vote columns mapped onto our 7 labels (contempt/unknown/NF are dropped).
FERPLUS_TO_EMOTION = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprise": "surprise",
    "neutral": "neutral",
}

SPLITS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}

# Sentiment mapping used by the dashboard and batch aggregates.
SENTIMENT = {
    "angry": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sad": "negative",
    "happy": "positive",
    "surprise": "neutral",
    "neutral": "neutral",
}
NEGATIVE_EMOTIONS = tuple(k for k, v in SENTIMENT.items() if v == "negative")

# Face detection and input limits.
# "yunet" (libfacedetection's YuNet, weights compiled into the yuface wheel: boxes and five
# landmarks) or "haar" (OpenCV cascades, boxes only). bench/bench_detect.py measured YuNet
# ahead on recall, false positives and speed; Haar stays selectable.
DETECTOR = os.environ.get("FER_DETECTOR", "yunet").strip().lower()
YUNET_MIN_SCORE = _env_float("FER_YUNET_MIN_SCORE", 0.6)
# Long side of the copy YuNet runs on: its cost grows with the pixel count, and faces below
# ~10 px of that copy are lost. bench/bench_detect.py on 1280x960 canvases of 40-400 px
# faces: recall 0.66 at 320 px, 0.78 at 480, 0.88 at 640 (Haar 0.96, but 0.76 against
# YuNet's 0.96 on in-the-wild ExpW photos). Fast mode (CLI --fast, the live camera's own
# LIVE_DETECT_WIDTH) trades the small faces for speed.
YUNET_MAX_SIDE = _env_int("FER_YUNET_MAX_SIDE", 640)
YUNET_FAST_SIDE = _env_int("FER_YUNET_FAST_SIDE", 320)
# Coarse to fine: YuNet first runs on a copy of this long side (0: off) and that answer
# stands when every face it holds is at least YUNET_COARSE_MIN_FACE px there; otherwise
# (no face, or a small one that may have smaller neighbours) the full pass above runs.
# YuNet finds 0.93-0.95 of faces of >= 48 px in its copy, 0.83-0.88 at 32-48 px, half at
# 20-32 px (ExpW faces pasted on 1280x960 canvases). At 56 px (faces >= 17.5% of the long
# side), 86% of 400-800 px ExpW web portraits stop at the coarse pass (detection ~15 ms
# instead of ~52); photos with small faces or none pay ~25% more. bench/bench_detect.py,
# canvases mixing 36-400 px faces: recall 0.943 / 0.825 (640x480 / 1280x960) against
# 0.957 / 0.881 without the coarse pass (0.864 / 0.762 with a 40 px threshold).
YUNET_COARSE_SIDE = _env_int("FER_YUNET_COARSE_SIDE", 320)
YUNET_COARSE_MIN_FACE = _env_int("FER_YUNET_COARSE_MIN_FACE", 56)
# A first look, on a copy of YUNET_GLANCE_SIDE px, at every image whose full pass works on
# at least 1.5x that side: when each face it holds is at least YUNET_GLANCE_MIN_FACE px
# there (30% of the long side) and no weaker candidate (score >= YUNET_GLANCE_DOUBT, a face
# it is unsure of) sits beside them, that answer stands and the coarse and full passes never
# run. The glance costs ~3-4 ms, a 320 px pass ~12. bench/bench_vs_fer.py, 300 photos per
# set, CPU per photo with decode and classifier: 62% of the portrait set and all of the CK+
# set stop at the glance (18.0 -> 14.1 ms, 16.1 -> 7.3 ms), 21% of the web set (22.2 ->
# 23.1 ms: the others pay the glance on top). On all 1,040 held-back ExpW photos and 927
# CK+ faces, faces found did not change and accuracy moved by 0.1 point at most (web
# 41.3%, portrait 42.0 -> 41.9%, CK+ 71.0 -> 70.9%). The price: beside a face of 30%+ of
# the long side, a neighbour the glance does not see at all (under ~14% of the long side)
# is not searched for. On canvases of one 25-45% face and 1-3 of 6-20%, 123 of 198
# neighbours were found against 130 without the glance; bench/bench_detect.py's canvases
# lost none. Turned off with the coarse pass (coarse_side=0) or alone (glance_side=0).
YUNET_GLANCE_SIDE = _env_int("FER_YUNET_GLANCE_SIDE", 160)
YUNET_GLANCE_MIN_FACE = _env_int("FER_YUNET_GLANCE_MIN_FACE", 48)
YUNET_GLANCE_DOUBT = _env_float("FER_YUNET_GLANCE_DOUBT", 0.1)
FACE_MARGIN = _env_float("FER_FACE_MARGIN", 0.10)
MIN_FACE_SIZE = _env_int("FER_MIN_FACE_SIZE", 24)
DETECT_MAX_SIDE = _env_int("FER_DETECT_MAX_SIDE", 640)
# Fast path for frames no larger than DETECT_MAX_SIDE: a coarse pass on a copy this size
# (long side; 0 turns it off). When it finds a face the answer stands; when it finds none,
# the full pass runs. It brings a 640x480 photo from ~70 ms to ~12 ms of detection here,
# at the price of faces under ~40 px in a frame that also holds a larger face, so it is
# off by default and on in "fast" mode (CLI --fast, EmotionRecognizer(fast=True)).
DETECT_FAST_SIDE = _env_int("FER_DETECT_FAST_SIDE", 0)
DETECT_FAST_SIDE_FAST_MODE = _env_int("FER_DETECT_FAST_SIDE_FAST_MODE", 320)
DETECT_FAST_SCALE_FACTOR = _env_float("FER_DETECT_FAST_SCALE_FACTOR", 1.25)
# Haar cascade settings, chosen with bench/bench_detect.py on offline photos: alt2 found
# more faces than the "default" cascade with far fewer false alarms, and was no slower.
HAAR_CASCADE = os.environ.get("FER_HAAR_CASCADE", "haarcascade_frontalface_alt2.xml")
HAAR_SCALE_FACTOR = _env_float("FER_HAAR_SCALE_FACTOR", 1.1)
HAAR_MIN_NEIGHBORS = _env_int("FER_HAAR_MIN_NEIGHBORS", 5)
# Tried only when the frontal cascade finds nothing (and mirrored, as it sees one side):
# it recovers turned heads at the cost of a slower empty frame. "" turns it off.
HAAR_PROFILE_CASCADE = os.environ.get("FER_HAAR_PROFILE_CASCADE", "haarcascade_profileface.xml")
HAAR_PROFILE_SCALE_FACTOR = _env_float("FER_HAAR_PROFILE_SCALE_FACTOR", 1.2)
HAAR_PROFILE_MIN_NEIGHBORS = _env_int("FER_HAAR_PROFILE_MIN_NEIGHBORS", 3)
# Two boxes are one face when their intersection covers this share of the smaller one.
NMS_OVERLAP = _env_float("FER_NMS_OVERLAP", 0.3)
# Test-time augmentation (src/engine/classifier.py): the views of each face whose class
# probabilities are averaged. "flip" (the face and its mirror) was +1.2 points on ExpW's
# held-back photos and +0.8 on FER2013's PublicTest against "none"; "zoom" adds both views
# zoomed 10% in and out (six in all): on v3 +0.3 on PrivateTest, +0.2 on ExpW's held-back
# photos, +2.4 on CK+ and +0.4 to +1.0 on FER+, but ~2.5 ms more per face, which takes a web
# photo from 0.49x to 0.54x the `fer` package's time on an idle machine. "scale" keeps only
# the four zoomed views (two thirds of zoom's cost).
# Each model is served with the views its manifest names (``test_time_views``, written by
# `evaluate --views`, which fits the temperature on those same views), else TTA; FER_TTA,
# when set, overrides every model's (TTA_OVERRIDE). FER_TTA_FLIP=0 (older setting) = "none".
TTA_MODES = ("none", "flip", "zoom", "scale")
TTA_OVERRIDE = os.environ.get("FER_TTA", "").strip().lower() or None
if TTA_OVERRIDE is not None and TTA_OVERRIDE not in TTA_MODES:
    raise ValueError(f"FER_TTA={TTA_OVERRIDE!r}: expected one of {', '.join(TTA_MODES)}")
if os.environ.get("FER_TTA_FLIP", "1").strip().lower() in ("0", "false", "no", "off", ""):
    TTA_OVERRIDE = "none"
TTA = TTA_OVERRIDE or "flip"
# How the model is served (src/engine/runtime.py): auto = its ONNX twin when it matches the
# manifest, else Keras; onnx = never TensorFlow; keras = always the .keras file.
RUNTIME = os.environ.get("FER_RUNTIME", "auto")
# ONNX Runtime threads per call (0 = one per core).
ONNX_THREADS = _env_int("FER_ONNX_THREADS", 0)
MAX_IMAGE_PIXELS = _env_int("FER_MAX_IMAGE_PIXELS", 50_000_000)
MAX_UPLOAD_MB = _env_int("FER_MAX_UPLOAD_MB", 200)
# REST API (src/api/app.py, `python -m src.cli serve`).
# Bearer key every /v1 route asks for. Unset, the server binds to loopback addresses only
# and takes calls from this machine alone.
API_KEY = os.environ.get("FER_API_KEY", "").strip()
# The largest request body (all files and fields of one call), in MB, enforced while the
# body streams in (a larger Content-Length is refused before any of it is read).
API_MAX_REQUEST_MB = _env_float("FER_API_MAX_REQUEST_MB", float(MAX_UPLOAD_MB))
API_MAX_FILES = _env_int("FER_API_MAX_FILES", 100)
# /v1/analyze-video: the longest video accepted, in seconds (its size is capped like any upload).
API_MAX_VIDEO_S = _env_float("FER_API_MAX_VIDEO_S", 600.0)
# Photos (or videos) read, decoded and analysed at once, whatever the number of requests
# (0 = one per core, and one more), and the memory the images decoded at once may take, each
# counted at 4 bytes per pixel (one larger than that is decoded alone): together they bound
# the server's memory (src/api/capacity.py).
API_ANALYSES = _env_int("FER_API_ANALYSES", 0)
API_DECODE_MB = _env_int("FER_API_DECODE_MB", 512)
# How long a request waits for one of those slots before a 503 with Retry-After.
API_QUEUE_TIMEOUT_S = _env_float("FER_API_QUEUE_TIMEOUT_S", 30.0)
# Slow clients: a request's headers must arrive within HEADER_TIMEOUT_S of its first byte (or of
# the connection); its body may pause at most BODY_IDLE_S and take at most BODY_TIMEOUT_S in all.
API_HEADER_TIMEOUT_S = _env_float("FER_API_HEADER_TIMEOUT_S", 10.0)
API_BODY_IDLE_S = _env_float("FER_API_BODY_IDLE_S", 30.0)
API_BODY_TIMEOUT_S = _env_float("FER_API_BODY_TIMEOUT_S", 600.0)
# Open connections and requests served at once; beyond it new requests get 503 at once.
API_MAX_CONNECTIONS = _env_int("FER_API_MAX_CONNECTIONS", 64)
# On SIGTERM, how long requests in progress may take to finish before they are cancelled.
API_SHUTDOWN_S = _env_int("FER_API_SHUTDOWN_S", 5)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Live camera (src/streams/live.py). The alert fires when negative emotions are the label of
# at least ALERT_THRESHOLD of the faces in every second for ALERT_SECONDS seconds.
ALERT_SECONDS = _env_float("FER_ALERT_SECONDS", 10.0)
ALERT_THRESHOLD = _env_float("FER_ALERT_THRESHOLD", 0.5)
LIVE_WINDOW_SECONDS = _env_int("FER_LIVE_WINDOW_SECONDS", 60)
# Haar detection is the expensive step: run it on a copy this size (long side; 0 = full
# frame), every Nth frame.
LIVE_DETECT_WIDTH = _env_int("FER_LIVE_DETECT_WIDTH", 320)
LIVE_DETECT_EVERY = _env_int("FER_LIVE_DETECT_EVERY", 3)
# Weight of the newest frame in the per-face moving average (lower = steadier labels).
LIVE_SMOOTHING = _env_float("FER_LIVE_SMOOTHING", 0.35)
# Face tracking across video samples and live frames (src/engine/tracking.py). A person
# keeps one track id while hidden (or missed by the detector) for up to TRACK_MAX_AGE
# seconds beyond the usual gap between frames. A new face's speed is unknown: TRACK_SPEED
# is its spread, in face sizes per second; TRACK_GATE is the farthest match, in standard
# deviations of the predicted position.
TRACK_MAX_AGE = _env_float("FER_TRACK_MAX_AGE", 1.0)
TRACK_SPEED = _env_float("FER_TRACK_SPEED", 4.0)
TRACK_GATE = _env_float("FER_TRACK_GATE", 4.0)
# People as the unit (src/analytics/people.py): a video or live track counts as a person once
# it has this many samples (detections); a detector glitch opens a one-sample track, whose
# sample still counts as a sample. A face in a photo is always a person.
PERSON_MIN_SAMPLES = _env_int("FER_PERSON_MIN_SAMPLES", 2)

# --- Per-face doubt (src/engine/doubt.py) ---------------------------------------------------
# A face is flagged "uncertain" (doubtful) when any rule below holds; 0 turns a rule off.
# Chosen with bench/score_doubt.py on ExpW's held-back faces through the whole pipeline (v3;
# re-measured on v3.1-scale: 1,013 faces found, right 44.7% of the time) so that each rule's
# flagged faces are right under ~30% of the time; figures in outputs/v5/doubt.json. All rules
# together flag 15.5% of those faces, right 24.8% of the time against 48.4% for the others.
# Short side of the face box, in the pixels it was read from. ExpW's faces are all ~64 px wide,
# so this was measured on copies shrunk to 12-32 px wide: boxes under 14 px are right 28.5% of
# the time against 42.8% (faces 12 px wide: 26%, 16 px: 32%, 24 px: 39%, 32 px: 46%).
DOUBT_MIN_FACE_PX = _env_float("FER_DOUBT_MIN_FACE_PX", 14.0)
# Sharpness of the aligned 48x48 gray input: Laplacian variance over intensity variance.
# ExpW's own blur barely changes accuracy, so this was measured on copies blurred on purpose
# (Gaussian of 1.5 and 3 px per 64 px of face): under 0.05 right 25.4% against 42.2%. It
# flags 0.9% of ExpW's faces as shipped.
DOUBT_MIN_SHARPNESS = _env_float("FER_DOUBT_MIN_SHARPNESS", 0.05)
# Head turn from YuNet's landmarks: nose tip's offset from the eyes' midpoint over the eye
# distance (0 frontal, ~0.5 at 45 degrees, >1 in profile). Off by default: on ExpW no
# threshold made turned faces less often right (over 1.0, profiles: 43% against 44%), the
# model having trained on such faces. Set e.g. 1.0 to flag profiles anyway.
DOUBT_MAX_YAW = _env_float("FER_DOUBT_MAX_YAW", 0.0)
# Top probability recalibrated for real photos (the manifest's temperature_wild, fitted on
# ExpW): under 0.30 flags 14.9% of ExpW's faces, right 24.5% against 48.3% for the others.
DOUBT_MIN_CONFIDENCE = _env_float("FER_DOUBT_MIN_CONFIDENCE", 0.30)


def _env_json(name: str, default):
    value = os.environ.get(name)
    return json.loads(value) if value else default


# WebRTC ICE servers, e.g. '[{"urls": ["stun:stun.l.google.com:19302"]}]'. Empty means
# host candidates only, which is all a local run needs; deployments behind NAT need STUN/TURN.
ICE_SERVERS: list[dict] = _env_json("FER_ICE_SERVERS", [])
# Python's GIL switch interval while the live camera runs (seconds; 0 leaves it alone). The
# frame worker makes many short OpenCV/TensorFlow calls that release the GIL; at the default
# 5 ms each re-acquisition can wait a full interval behind the WebRTC event loop.
LIVE_SWITCH_INTERVAL = _env_float("FER_LIVE_SWITCH_INTERVAL", 0.001)

# --- Bad-input hardening (issue 7, part C) --------------------------------------------
# Images are decoded no larger than this on their long side (pixels; 0 = full size): JPEGs
# decode at 1/2, 1/4 or 1/8 scale directly and other formats are shrunk strip by strip, so
# one upload never costs more than about its decoded full-size bitmap. Face boxes are in the
# pixels of the decoded image. The detectors work on a smaller copy anyway.
DECODE_MAX_SIDE = _env_int("FER_DECODE_MAX_SIDE", 2048)
# Zip uploads: the most one archive may unpack to, and the largest compression ratio of a
# member (above ZIP_RATIO_MIN_MB unpacked: photos barely compress, bombs do by ~1000x).
ZIP_MAX_TOTAL_MB = _env_int("FER_ZIP_MAX_TOTAL_MB", 400)
ZIP_MAX_RATIO = _env_int("FER_ZIP_MAX_RATIO", 100)
ZIP_RATIO_MIN_MB = _env_float("FER_ZIP_RATIO_MIN_MB", 1.0)

# --- Results store (src/analytics/store/) -------------------------------------------------------
# SQLAlchemy URL of the results database: sqlite:///PATH, postgresql+psycopg://USER:PW@HOST/DB
# or mysql+pymysql://USER:PW@HOST/DB (MariaDB too). The default is a git-ignored SQLite file
# beside the evaluation outputs. See docs/store.md.
DATABASE_URL = os.environ.get("FER_DATABASE_URL", "").strip() or f"sqlite:///{(OUTPUTS_DIR / 'results.db').as_posix()}"
# Runs older than this many days are deleted when a store is opened (and by
# `python -m src.cli runs retention`); 0 keeps everything.
RETENTION_DAYS = _env_int("FER_RETENTION_DAYS", 0)
# A run's lease, in seconds: every write renews it, and a run still "running" with no write
# for this long was abandoned by its process (killed, crashed) and is marked failed when a
# store opens, on retention passes, and as new runs start. Writers must store something at
# least this often.
RUN_LEASE_S = _env_float("FER_RUN_LEASE_S", 600.0)
# Above this many rows, History's downloads say where a streamed export is made instead: a
# Streamlit download is built whole in the dashboard's memory before the browser gets a byte.
DASHBOARD_EXPORT_ROWS = _env_int("FER_DASHBOARD_EXPORT_ROWS", 200_000)

# --- Emotion groups and live-alert delivery (src/analytics/groups/, src/analytics/alerts.py) ------------
# User-defined emotion groups (TOML, or JSON for a .json name). A missing or invalid file
# is reported and the built-in sentiment grouping is used alone.
GROUPS_FILE = _env_path("FER_GROUPS_FILE", ROOT / "inputs" / "emotion_groups.toml")
# The group the live alert watches: a group name (sentiment's groups are searched first)
# or "grouping:group", e.g. "custom:frustrated".
ALERT_GROUP = os.environ.get("FER_ALERT_GROUP", "negative")
# Where the live alert is POSTed as JSON when it fires (empty = nowhere, browser only).
ALERT_WEBHOOK = os.environ.get("FER_ALERT_WEBHOOK", "").strip()
ALERT_WEBHOOK_TIMEOUT = _env_float("FER_ALERT_WEBHOOK_TIMEOUT", 5.0)  # seconds per attempt
ALERT_WEBHOOK_ATTEMPTS = _env_int("FER_ALERT_WEBHOOK_ATTEMPTS", 4)  # tries per event, the first included
ALERT_WEBHOOK_BACKOFF = _env_float("FER_ALERT_WEBHOOK_BACKOFF", 1.0)  # seconds before the 2nd try; doubles after
ALERT_WEBHOOK_QUEUE = _env_int("FER_ALERT_WEBHOOK_QUEUE", 100)  # events waiting; the oldest is dropped past it
