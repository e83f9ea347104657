"""The REST API (src/api/) over real HTTP: one uvicorn server (`python -m src.cli serve`)
with the tiny test model, a temporary SQLite store and a non-ASCII API key, called with httpx.

Calls that are meant to fail authentication come from other loopback addresses
(`_elsewhere`), so that the throttling of failed keys never touches the main client."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from support import free_port, jpeg_bytes, png_bytes, stop_process

from src.api.app import ApiSettings, create_app, is_loopback, split_tags
from src.api.auth import AuthThrottle, auth_problem, client_key, key_problem, serve_problem

ROOT = Path(__file__).resolve().parents[2]
KEY = "clé-de-test-0123456789abcdef"  # non-ASCII on purpose: clients send it as UTF-8
AUTH = {"Authorization": f"Bearer {KEY}".encode()}
MAX_REQUEST_MB = 3
MAX_FILES = 8
START_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    from skimage import data

    return jpeg_bytes(data.astronaut())


def _start_server(model: Path, tmp: Path, **env_extra: str):
    """``python -m src.cli serve`` on a free loopback port; returns (process, base URL, log file)."""
    port = free_port()
    log = tmp / "server.log"
    env = {
        **os.environ,
        "FER_MODEL": str(model),
        "FER_DATABASE_URL": f"sqlite:///{(tmp / 'results.db').as_posix()}",
        "FER_API_KEY": KEY,
        "FER_API_MAX_REQUEST_MB": str(MAX_REQUEST_MB),
        "FER_API_MAX_FILES": str(MAX_FILES),
        "FER_MAX_UPLOAD_MB": "1",
        "FER_ONNX_THREADS": "1",
        **env_extra,
    }
    cmd = [sys.executable, "-m", "src.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base, log
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(trained_model, tmp_path_factory):
    """The API on a free loopback port; yields (base URL, server process id, log file)."""
    proc, base, log = _start_server(trained_model, tmp_path_factory.mktemp("api"))
    try:
        yield base, proc.pid, log
    finally:
        stop_process(proc, timeout=20)


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server[0], headers=AUTH, timeout=60) as c:
        yield c


_addresses = itertools.count(1)


def _elsewhere(base: str, **kwargs) -> httpx.Client:
    """A client calling from a loopback address of its own (127.0.1.x): its own throttling bucket."""
    n = next(_addresses)
    transport = httpx.HTTPTransport(local_address=f"127.0.{1 + n // 250}.{1 + n % 250}")
    return httpx.Client(base_url=base, transport=transport, timeout=60, **kwargs)


def _analyze(client, files, **fields):
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/v1/analyze", files=parts, data=fields)


def _rows(client, **params):
    r = client.get("/v1/results", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["results"])
    return body["results"]


def test_health_is_open_and_names_model_and_store(server, trained_model):
    r = httpx.get(f"{server[0]}/health")
    assert r.status_code == 200
    body = r.json()
    from src.engine.manifest import read_manifest

    manifest = read_manifest(trained_model)
    assert body["status"] == "ok"
    assert body["model_version"] == "test-smoke" == manifest["version"]
    assert body["class_names"] == manifest["class_names"]
    assert body["store_backend"] == "sqlite"
    assert body["auth"] == "api_key"
    assert (body["max_request_mb"], body["max_files"], body["max_file_mb"]) == (MAX_REQUEST_MB, MAX_FILES, 1)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_the_server_itself(server, page):
    """Offline docs (issue 19, part 6): no external URL, and every asset the page names is served here."""
    r = httpx.get(f"{server[0]}{page}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"(https?:)?//", html), "an external URL"
    refs = set(re.findall(r'(?:src|href|spec-url)="([^"]+)"', html)) | set(re.findall(r"url: '([^']+)'", html))
    assert {"/openapi.json"} < refs
    for ref in refs:
        assert ref.startswith("/"), ref
        asset = httpx.get(f"{server[0]}{ref}")
        assert asset.status_code == 200 and len(asset.content) > 100, ref
    if page == "/docs":
        assert "swagger-ui-bundle.js" in html and '"validatorUrl": null' in html


def test_docs_and_openapi_describe_the_api(server):
    spec = httpx.get(f"{server[0]}/openapi.json").json()
    assert spec["info"]["title"] and spec["info"]["version"]
    assert {"/health", "/v1/analyze", "/v1/runs", "/v1/results", "/v1/summary"} <= set(spec["paths"])
    form = spec["components"]["schemas"]["Body_analyze_v1_analyze_post"]["properties"]
    assert all(form[name].get("description") for name in ("files", "campaign", "location", "tags", "store"))
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/runs"), ("GET", "/v1/results"), ("GET", "/v1/summary"), ("POST", "/v1/analyze")],
)
@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-key", f"Bearer {KEY[:-1]}", f"Basic {KEY}", f"Bearer {KEY}x"],
    ids=["none", "wrong", "prefix", "basic", "longer"],
)
def test_v1_routes_need_the_right_key(server, method, path, header):
    headers = {} if header is None else {"Authorization": header.encode()}
    with _elsewhere(server[0]) as c:
        r = c.request(method, path, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/json"
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["detail"] in ("wrong API key", "missing API key: send the header 'Authorization: Bearer <key>'")


def test_the_key_is_checked_before_the_upload_is_read(server):
    """An unknown caller's upload is refused on its headers: 401, not 413 for its size."""
    body = os.urandom((MAX_REQUEST_MB + 1) * 1024 * 1024)
    with _elsewhere(server[0]) as c:
        r = c.post("/v1/analyze", files=[("files", ("a.jpg", body))])
    assert r.status_code == 401 and r.json()["detail"].startswith("missing API key")


def test_analyze_mixed_batch_gives_each_file_its_own_status(client, face_jpeg):
    no_face = png_bytes(np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1)))
    huge = png_bytes(np.zeros((8000, 8000), np.uint8))  # 64 M pixels: over FER_MAX_IMAGE_PIXELS, a few kB packed
    too_big = np.random.default_rng(0).integers(0, 256, 1_200_000, dtype=np.uint8).tobytes()  # > FER_MAX_UPLOAD_MB
    files = [
        ("astronaut.jpg", face_jpeg),
        ("gradient.png", no_face),
        ("notes.txt", b"this is not an image"),
        ("empty.jpg", b""),
        ("truncated.jpg", face_jpeg[: len(face_jpeg) // 2]),
        ("huge.png", huge),
        ("big.bin", too_big),
    ]
    r = _analyze(client, files, campaign="mixed", location="Lab 1", tags=["a, b", "c"])
    assert r.status_code == 200, r.text
    body = r.json()
    results = body["results"]
    assert [x["file"] for x in results] == [name for name, _ in files]
    status = {x["file"]: (x["status"], x["error"]) for x in results}
    assert status["astronaut.jpg"] == ("ok", "")
    assert status["gradient.png"] == ("no_face", "")
    assert status["notes.txt"] == ("error", "not an image")
    assert status["empty.jpg"] == ("error", "empty file")
    assert status["truncated.jpg"][0] == "error" and status["truncated.jpg"][1].startswith("corrupt image")
    assert status["huge.png"][0] == "error" and status["huge.png"][1].startswith("image too large (8000x8000")
    assert status["big.bin"] == ("error", "file too large (1.1 MB, limit 1 MB)")

    names = body["class_names"]
    face = results[0]["faces"][0]
    assert results[0]["width"] == results[0]["height"] == 512
    box = face["box"]
    assert 0 <= box["x"] < box["x"] + box["w"] <= 512 and 0 <= box["y"] < box["y"] + box["h"] <= 512
    assert list(face["emotions"]) == names
    assert sum(face["emotions"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["emotion"] == max(face["emotions"], key=face["emotions"].get)
    assert face["confidence"] == pytest.approx(max(face["emotions"].values()))
    # The doubt: a flag and its reasons, which say it whenever it is set (src/engine/doubt.py).
    assert isinstance(face["uncertain"], bool) and isinstance(face["doubts"], list)
    assert face["uncertain"] == bool(face["doubts"])
    assert set(face["doubts"]) <= {"small", "blurred", "turned", "low_confidence"}

    rows = _rows(client, run_id=body["run_id"])
    faces = sum(len(x["faces"]) for x in results)
    assert len(rows) == faces + sum(1 for x in results if not x["faces"])
    assert {r["campaign"] for r in rows} == {"mixed"} and {r["location"] for r in rows} == {"Lab 1"}
    assert rows[0]["tags"] == ["a", "b", "c"] and rows[0]["source"] == "api"
    stored = {r["file"]: (r["status"], r["error"]) for r in rows}
    assert stored == {x["file"]: (x["status"], x["error"]) for x in results}


def test_analyze_without_store_keeps_nothing(client, face_jpeg):
    r = _analyze(client, [("a.jpg", face_jpeg)], campaign="not-stored", store="false")
    assert r.status_code == 200
    assert r.json()["run_id"] is None and r.json()["results"][0]["status"] == "ok"
    assert _rows(client, campaign="not-stored") == []


def test_bad_names_are_refused_before_any_work(client, face_jpeg):
    r = _analyze(client, [("a.jpg", face_jpeg)], campaign="two\nlines")
    assert r.status_code == 422 and "control characters" in r.json()["detail"]
    r = _analyze(client, [("a.jpg", face_jpeg)], location="x" * 300)
    assert r.status_code == 422 and "limit is 255" in r.json()["detail"]
    assert client.get("/v1/runs", params={"source": "email"}).status_code == 422
    assert client.get("/v1/results", params={"since": "yesterday"}).status_code == 422
    assert client.get("/v1/results", params={"format": "xml"}).status_code == 422


def test_too_large_body_is_413_by_content_length(client):
    body = os.urandom((MAX_REQUEST_MB + 1) * 1024 * 1024)
    r = _analyze(client, [("big.jpg", body)])
    assert r.status_code == 413
    assert "FER_API_MAX_REQUEST_MB" in r.json()["detail"] and f"{MAX_REQUEST_MB} MB" in r.json()["detail"]
    assert client.get("/health").status_code == 200  # the connection and the server carry on


def _memory_kb(pid: int) -> dict[str, int]:
    fields = (line.split() for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {f[0].rstrip(":"): int(f[1]) for f in fields if f and f[0] in ("VmRSS:", "VmHWM:")}


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads the server's peak memory from /proc")
def test_too_large_streamed_body_is_413_without_being_held(server, client):
    """A chunked upload (no Content-Length) of 64 MB against a 3 MB limit: cut off as it streams."""
    total_mb = 64
    Path(f"/proc/{server[1]}/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _memory_kb(server[1])["VmRSS"]

    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="x.jpg"\r\n\r\n'
        block = b"x" * (1024 * 1024)
        for _ in range(total_mb):
            yield block
        yield b"\r\n--b--\r\n"

    r = client.post("/v1/analyze", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 413 and "FER_API_MAX_REQUEST_MB" in r.json()["detail"]
    grown_mb = (_memory_kb(server[1])["VmHWM"] - before) / 1024
    assert grown_mb < total_mb / 4, f"the server's peak memory grew {grown_mb:.0f} MB"


def test_too_many_files_is_413(client):
    tiny = png_bytes(np.zeros((8, 8), np.uint8))
    r = _analyze(client, [(f"{i}.png", tiny) for i in range(MAX_FILES + 1)])
    assert r.status_code == 413
    assert r.json()["detail"] == f"too many files: at most {MAX_FILES} per request (FER_API_MAX_FILES)"
    r = _analyze(client, [(f"{i}.png", tiny) for i in range(MAX_FILES)], store="false")
    assert r.status_code == 200 and [x["status"] for x in r.json()["results"]] == ["no_face"] * MAX_FILES


def test_results_json_is_exact_and_csv_is_neutralised(client, face_jpeg):
    formula = "=cmd|' /C calc'!A0 é.jpg"  # (httpx %-encodes double quotes in file names, so none here)
    r = _analyze(client, [(formula, face_jpeg), ("@sum.txt", b"no image")], campaign="=cmd", tags="-t")
    assert r.status_code == 200
    run_id = r.json()["run_id"]

    rows = _rows(client, run_id=run_id)
    assert [row["file"] for row in rows] == [formula, "@sum.txt"]
    assert rows[0]["campaign"] == "=cmd" and rows[0]["tags"] == ["-t"]

    r = client.get("/v1/results", params={"run_id": run_id, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["file"] for row in table] == ["'" + formula, "'@sum.txt"]
    assert table[0]["campaign"] == "'=cmd" and table[0]["tags"] == "'-t"
    assert table[0]["emotion"] == rows[0]["emotion"]
    assert float(table[0]["confidence"]) == pytest.approx(rows[0]["confidence"])
    assert table[1]["status"] == "error" and table[1]["error"] == "not an image"


def test_summary_matches_the_results(client, face_jpeg):
    no_face = png_bytes(np.full((120, 160), 128, np.uint8))
    for files in ([("a.jpg", face_jpeg), ("b.jpg", face_jpeg)], [("a.jpg", face_jpeg), ("c.png", no_face)]):
        assert _analyze(client, files, campaign="summary").status_code == 200
    assert _analyze(client, [("x.txt", b"??")], campaign="summary").status_code == 200

    rows = _rows(client, campaign="summary")
    r = client.get("/v1/summary", params={"campaign": "summary"})
    assert r.status_code == 200
    s = r.json()
    faces = [row for row in rows if row["status"] == "ok"]
    assert s["runs"] == 3 and s["images"] == 5
    assert s["faces"] == len(faces) == 3
    assert (s["no_face"], s["errors"]) == (1, 1)
    by_emotion = {e["emotion"]: e for e in s["emotions"]}
    for emotion, entry in by_emotion.items():
        n = sum(1 for row in faces if row["emotion"] == emotion)
        assert entry["faces"] == n and entry["share"] == pytest.approx(n / len(faces))
    assert s["grouping"] == "sentiment"
    groups = {g["group"]: g for g in s["groups"]}
    for group, entry in groups.items():
        n = sum(1 for row in faces if row["sentiment"] == group)
        assert entry["faces"] == n and entry["share"] == pytest.approx(n / len(faces))
    net = 100 * (groups["positive"]["faces"] - groups["negative"]["faces"]) / len(faces)
    assert s["net_sentiment"] == pytest.approx(net, abs=0.05)
    # The custom groups of the shipped groups file, counted the way src.analytics.groups counts them.
    from src.analytics import aggregates

    frame = pd.DataFrame(faces).astype({"confidence": float})
    expected = aggregates.group_counts(frame)
    assert {(g["grouping"], g["group"], g["faces"]) for g in s["custom_groups"]} == set(
        zip(expected["grouping"], expected["group"], expected["faces"].astype(int))
    )
    assert s["custom_groups"], "the shipped emotion_groups.toml defines custom groups"

    one = client.get("/v1/summary", params={"campaign": "summary", "run_id": rows[0]["run_id"]}).json()
    assert (one["runs"], one["images"], one["faces"]) == (1, 2, 2)

    # The test model has no error model beside it: no corrected share, and the reason says so.
    assert s["error_model"] is None and s["adjustment"] is None
    assert "no error model" in s["error_model_reason"] and "src.cli error-model" in s["error_model_reason"]
    assert "/" not in s["error_model_reason"].split("(")[1].split(")")[0], "the server's paths stay on the server"
    for record in (*s["emotions"], *s["groups"], *s["custom_groups"]):
        assert (record["adjusted_share"], record["adjusted_low"], record["adjusted_high"]) == (None, None, None)
        assert record["adjusted_reason"] == s["error_model_reason"]


def test_summary_counts_people_beside_the_samples(server, client, face_jpeg):
    """A photo's face is one person and one face; a video's person followed for 10 samples is
    one person and 10 faces (samples); a live session's person counts as a person too."""
    from src.analytics.store import Store

    assert _analyze(client, [("a.jpg", face_jpeg)], campaign="people").status_code == 200
    probs = {"happy": 0.9, "sad": 0.1}
    track = [
        {"file": "clip.mp4", "face": 0, "emotion": "happy", "confidence": 0.9, **probs, "time": i / 2, "track_id": 0}
        for i in range(10)
    ]
    glitch = {**track[0], "track_id": 1, "time": 2.0}  # a one-sample track: no person
    with Store(f"sqlite:///{(server[2].parent / 'results.db').as_posix()}") as store:
        store.save_rows("video", [*track, glitch], campaign="people")
        live = store.start_run("live", campaign="people")
        store.add_live_seconds(
            live,
            [{"second": 1_773_000_000 + i, "faces": 1, "counts": {"sad": 1}} for i in range(15)],
            people=[
                {"file": "(live camera)", "emotion": "sad", "first_seen": 1_773_000_000, "last_seen": 1_773_000_014}
            ],
        )
        store.finish_run(live)
    s = client.get("/v1/summary", params={"campaign": "people"}).json()
    # Samples: the photo's face, the video's 11 face rows and the live session's 15 face-seconds.
    assert (s["people"], s["faces"], s["images"]) == (3, 27, 2)
    # The shares count people: the photo's face, the happy person of the video, the sad one of the live camera.
    by_emotion = {e["emotion"]: e["faces"] for e in s["emotions"] if e["faces"]}
    photo = client.get("/v1/results", params={"campaign": "people", "source": "api"}).json()["results"][0]["emotion"]
    expected = {"happy": 1, "sad": 1}
    expected[photo] = expected.get(photo, 0) + 1
    assert by_emotion == expected and sum(g["faces"] for g in s["groups"]) == 3
    only_video = client.get("/v1/summary", params={"campaign": "people", "source": "video"}).json()
    assert (only_video["people"], only_video["faces"]) == (1, 11)
    spec = client.get("/openapi.json").json()["components"]["schemas"]["SummaryOut"]["properties"]
    assert "samples" in spec["faces"]["description"] and "people" in spec


def _error_model_for(model: Path, path: Path, **changes) -> Path:
    """An error model for ``model`` (its weights' sha256) at ``path``: a model right on 60% of faces."""
    from src.engine.manifest import read_manifest
    from src.training.error_model import ErrorModel, to_json

    manifest = read_manifest(model)
    k = len(manifest["class_names"])
    counts = np.full((k, k), 4) + np.diag(np.full(k, 56))
    fields = dict(
        class_names=tuple(manifest["class_names"]),
        counts=counts,
        missed=np.ones(k, np.int64),
        dataset="ExpW",
        split="held-back photos (test)",
        photos=400,
        model_file=model.name,
        model_sha256=manifest["sha256"],
        runtime="onnx",
        created="2026-12-01T10:00:00+00:00",
    )
    path.write_text(to_json(ErrorModel(**{**fields, **changes})))
    return path


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_cli_stored_photo_runs_read_back_with_corrected_shares(trained_model, tmp_path, monkeypatch, face_jpeg):
    """Issue #17, part 6: runs stored with `predict --store --campaign NAME` (photos, and --crops)
    appear in /v1/summary like any others, with corrected shares, their ranges and the error
    model they rest on; the error model is read once per app, not per request."""
    from fastapi.testclient import TestClient

    from src import config
    from src.analytics.store import Store
    from src.api import shares
    from src.cli import main

    photos, crops = tmp_path / "photos", tmp_path / "crops"
    photos.mkdir(), crops.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (photos / name).write_bytes(face_jpeg)
    rng = np.random.default_rng(0)
    for i in range(3):
        (crops / f"crop{i}.png").write_bytes(png_bytes(rng.integers(0, 256, (48, 48), dtype=np.uint8)))
    url = f"sqlite:///{(tmp_path / 'cli.db').as_posix()}"
    monkeypatch.setattr(config, "DATABASE_URL", url)
    model = ["--model", str(trained_model), "--store", "--campaign", "From the CLI"]
    assert main(["predict", str(photos), *model]) == 0
    assert main(["predict", "--crops", str(crops), *model]) == 0

    loads = []
    original = shares.load_error_model
    monkeypatch.setattr(shares, "load_error_model", lambda *a, **k: loads.append(a) or original(*a, **k))
    settings = ApiSettings(
        api_key=KEY, model_file=trained_model, error_model_file=_error_model_for(trained_model, tmp_path / "em.json")
    )
    with Store(url) as store, TestClient(create_app(settings, store=store), headers=AUTH) as c:
        s = c.get("/v1/summary", params={"campaign": "From the CLI"}).json()
        crops_only = c.get("/v1/summary", params={"campaign": "From the CLI", "run_id": _crops_run(c)}).json()
    assert len(loads) == 1, "the error model is loaded once per app"
    assert (s["runs"], s["images"], s["faces"], s["people"]) == (2, 5, 5, 5)
    assert crops_only["faces"] == 3
    em = s["error_model"]
    assert s["error_model_reason"] is None
    assert (em["dataset"], em["photos"], em["faces"], em["labelled_faces"]) == ("ExpW", 400, 7 * 84, 7 * 85)
    assert em["model_version"] == "test-smoke" and em["created"].startswith("2026-12-01")
    assert em["model_sha256"] and "400 held-back ExpW photos" in em["description"]
    for summary in (s, crops_only):
        adjustment = summary["adjustment"]
        assert adjustment["method"] == "bayes" and adjustment["level"] == 0.95
        assert "mix-ups" in adjustment["explanation"] and adjustment["warnings"] == []
        assert adjustment["clusters"] == summary["faces"]  # one face per photo or crop
        for key in ("emotions", "groups"):
            records = summary[key]
            for r in records:
                assert r["adjusted_reason"] is None, r
                assert 0 <= r["adjusted_low"] <= r["adjusted_share"] <= r["adjusted_high"] <= 1
            assert sum(r["adjusted_share"] for r in records) == pytest.approx(1, abs=1e-3)
            assert sum(r["share"] for r in records) == pytest.approx(1)
    # The shipped custom grouping: "frustrated" is corrected; "delighted" has a confidence
    # threshold, and "other" depends on it, so neither is, and each says why.
    custom = {r["group"]: r for r in s["custom_groups"]}
    assert custom["frustrated"]["adjusted_share"] is not None
    assert "0.7 sure" in custom["delighted"]["adjusted_reason"] and custom["delighted"]["adjusted_share"] is None
    assert "threshold" in custom["other"]["adjusted_reason"] and custom["other"]["adjusted_high"] is None


def _crops_run(c) -> str:
    rows = c.get("/v1/results", params={"campaign": "From the CLI"}).json()["results"]
    return next(r["run_id"] for r in rows if r["file"].endswith("crop0.png"))


def test_an_error_model_of_other_weights_is_not_used(trained_model, tmp_path):
    from src.api.shares import ServedErrorModel
    from src.engine.classifier import model_views
    from src.engine.manifest import read_manifest

    manifest = read_manifest(trained_model)
    other = _error_model_for(trained_model, tmp_path / "other.json", model_sha256="ab" * 32)
    served = ServedErrorModel.load(trained_model, manifest, other)
    assert served.model is None and "other weights" in served.reason and served.block() is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "unusable" in ServedErrorModel.load(trained_model, manifest, broken).reason
    mine = ServedErrorModel.load(trained_model, manifest, _error_model_for(trained_model, tmp_path / "mine.json"))
    assert mine.reason is None and mine.block()["model_version"] == "test-smoke"
    # Same weights, measured with other test-time views than the model is served with: not used.
    served_views = model_views(manifest)
    other_views = "zoom" if served_views != "zoom" else "flip"
    stale = ServedErrorModel.load(
        trained_model, manifest, _error_model_for(trained_model, tmp_path / "views.json", views=other_views)
    )
    assert stale.model is None and f"test-time views {other_views!r}" in stale.reason
    same = ServedErrorModel.load(
        trained_model, manifest, _error_model_for(trained_model, tmp_path / "same.json", views=served_views)
    )
    assert same.reason is None and same.block()["test_time_views"] == served_views


def tallies(counts: dict[str, int]) -> pd.DataFrame:
    """Person tallies (``Store.tallies``' columns) of people seen in one hour."""
    return pd.DataFrame(
        {
            "hour": pd.Timestamp("2026-03-02 10:00", tz="UTC"),
            "campaign": "c",
            "location": "",
            "source": "api",
            "emotion": list(counts),
            "uncertain": False,
            "n": list(counts.values()),
        }
    )


def test_people_of_another_model_or_unknown_labels_are_said_so():
    from src.api.app import summarize
    from src.api.shares import ServedErrorModel
    from src.training.error_model import ErrorModel

    names = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    served = ServedErrorModel(ErrorModel(names, np.full((7, 7), 4) + np.diag(np.full(7, 56)), None), None, "v2")
    runs = pd.DataFrame({"model_version": ["v1", "v2"], "runs": [1, 1], "files": [1, 2], "people": [1, 2]})

    sure = {0.7: tallies({"happy": 1})}  # the shipped "delighted" counts people at least 0.7 sure
    s = summarize(tallies({"happy": 2, "sad": 1}), tallies({"happy": 5, "sad": 1}), runs, names, served, sure=sure)
    assert "1 of the 3 people were read by another model (v1)" in s["adjustment"]["warnings"][0]
    assert all(r["adjusted_share"] is not None for r in s["emotions"])
    assert (s["runs"], s["images"], s["faces"], s["people"]) == (2, 3, 6, 3)
    assert {e["emotion"]: e["faces"] for e in s["emotions"]}["happy"] == 2 and s["net_sentiment"] == pytest.approx(
        round(100 / 3, 1)
    )
    assert s["adjustment"]["clusters"] == 3 and s["adjustment"]["effective_faces"] == 3  # each person one unit
    odd = summarize(tallies({"happy": 1, "contempt": 1}), tallies({"happy": 1}), runs[1:], names, served, sure=sure)
    assert odd["adjustment"] is None and odd["error_model"]["model_version"] == "v2"
    assert all("contempt" in r["adjusted_reason"] and r["adjusted_share"] is None for r in odd["emotions"])


def test_a_group_with_a_confidence_threshold_counts_the_people_sure_enough():
    """The shipped "delighted" (happy, at least 0.7 sure) counts from the thresholded tallies; "other"
    takes the happy people below it and every emotion in no group."""
    from src.api.app import summarize

    names = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    runs = pd.DataFrame({"model_version": ["v1"], "runs": [1], "files": [10], "people": [10]})
    people = tallies({"happy": 6, "sad": 3, "neutral": 1})
    s = summarize(people, people, runs, names, None, sure={0.7: tallies({"happy": 4})})
    custom = {(r["grouping"], r["group"]): r["faces"] for r in s["custom_groups"]}
    assert custom == {("custom", "frustrated"): 3, ("custom", "delighted"): 4, ("custom", "other"): 3}


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_summary_counts_people_from_the_tallies_and_results_csv_streams(trained_model, tmp_path):
    """Issue 19: /v1/summary reads the store's tallies and counts people (a video's person once, with
    their label), leaves doubtful people out when asked, and counts the files without a face or that
    failed; /v1/results?format=csv streams chunk by chunk with one header (an empty selection: the header)."""
    from fastapi.testclient import TestClient

    from src.analytics.store import Store
    from src.api.app import _csv_stream

    probs = {"happy": 0.9, "sad": 0.1}
    with Store(f"sqlite:///{(tmp_path / 'r.db').as_posix()}") as store:
        photos = [
            {"file": "a.jpg", "face": 0, "emotion": "sad", "confidence": 0.8, **probs, "uncertain": True},
            {"file": "b.jpg", "face": 0, "emotion": "happy", "confidence": 0.9, **probs},
            {"file": "c.png", "status": "no_face"},
            {"file": "d.txt", "status": "error", "error": "not an image"},
        ]
        store.save_rows("batch", photos, campaign="tallied")
        track = [
            {
                "file": "clip.mp4",
                "face": 0,
                "emotion": "happy",
                "confidence": 0.9,
                **probs,
                "time": i / 2,
                "track_id": 0,
            }
            for i in range(8)
        ]
        store.save_rows("video", track, campaign="tallied")
        settings = ApiSettings(api_key=KEY, model_file=trained_model)
        with TestClient(create_app(settings, store=store), headers=AUTH) as c:
            s = c.get("/v1/summary", params={"campaign": "tallied"}).json()
            sure = c.get("/v1/summary", params={"campaign": "tallied", "include_uncertain": "false"}).json()
            csv_text = c.get("/v1/results", params={"campaign": "tallied", "format": "csv"}).text
            empty = c.get("/v1/results", params={"campaign": "nobody", "format": "csv"}).text
        chunked = b"".join(_csv_stream(store.iter_results(campaign="tallied", chunk_rows=3), lambda: None))
    assert (s["runs"], s["images"], s["faces"], s["people"], s["no_face"], s["errors"]) == (2, 5, 10, 3, 1, 1)
    emotions = {e["emotion"]: e["faces"] for e in s["emotions"] if e["faces"]}
    assert emotions == {"happy": 2, "sad": 1} and s["net_sentiment"] == pytest.approx(round(100 / 3, 1))
    assert (sure["people"], sure["faces"]) == (2, 9)
    assert {e["emotion"]: e["faces"] for e in sure["emotions"] if e["faces"]} == {"happy": 2}
    table = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(table) == 12 and [r["status"] for r in table[:4]] == ["ok", "ok", "no_face", "error"]
    assert empty.startswith("run_id,run_time,") and len(empty.splitlines()) == 1
    assert chunked.decode("utf-8") == csv_text.replace("\r\n", "\n")  # 4 chunks of 3 rows, one header


def test_runs_filters(client, face_jpeg):
    assert _analyze(client, [("a.jpg", face_jpeg)], campaign="runs-1").status_code == 200
    assert _analyze(client, [("a.jpg", face_jpeg)], campaign="runs-2").status_code == 200
    runs = client.get("/v1/runs", params={"campaign": ["runs-1", "runs-2"], "source": "api"}).json()
    assert runs["count"] == 2 and [r["campaign"] for r in runs["runs"]] == ["runs-2", "runs-1"]  # newest first
    newest = runs["runs"][0]
    assert newest["files"] == 1 and newest["faces"] == 1 and newest["model_version"] == "test-smoke"
    assert client.get("/v1/runs", params={"campaign": "runs-1", "limit": 1}).json()["count"] == 1
    assert client.get("/v1/runs", params={"campaign": "runs-1", "source": "cli"}).json()["count"] == 0
    later = {"campaign": ["runs-1", "runs-2"], "since": newest["run_time"]}
    assert [r["campaign"] for r in client.get("/v1/runs", params=later).json()["runs"]] == ["runs-2"]
    earlier = {"campaign": ["runs-1", "runs-2"], "until": newest["run_time"]}
    assert [r["campaign"] for r in client.get("/v1/runs", params=earlier).json()["runs"]] == ["runs-1"]
    assert _rows(client, campaign="runs-2", since="2999-01-01T00:00:00Z") == []
    empty = client.get("/v1/summary", params={"campaign": "no-such-campaign"}).json()
    assert (empty["runs"], empty["images"], empty["faces"], empty["net_sentiment"]) == (0, 0, 0, None)
    assert {e["faces"] for e in empty["emotions"]} == {0} and len(empty["emotions"]) == 7


def test_concurrent_analyze_requests_are_all_stored_and_agree(client, server, face_jpeg):
    """20 requests at once: every one answered and stored, and the threads' probabilities identical."""
    reference = _analyze(client, [("ref.jpg", face_jpeg)], store="false").json()["results"][0]["faces"][0]

    def call(i: int):
        with httpx.Client(base_url=server[0], headers=AUTH, timeout=120) as c:
            return _analyze(c, [(f"photo_{i:02d}.jpg", face_jpeg)], campaign="concurrent")

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(call, range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    run_ids = {r.json()["run_id"] for r in responses}
    assert len(run_ids) == 20 and None not in run_ids
    for r in responses:
        face = r.json()["results"][0]["faces"][0]
        assert face["box"] == reference["box"]
        assert face["emotions"] == pytest.approx(reference["emotions"], abs=1e-6)

    rows = _rows(client, campaign="concurrent")
    assert len(rows) == 20
    assert sorted(r["file"] for r in rows) == [f"photo_{i:02d}.jpg" for i in range(20)]
    assert {r["run_id"] for r in rows} == run_ids


# --- Issue 19's defects 5 and 8-11, one test (or more) each -----------------------------------


@pytest.mark.parametrize("path", ["/v1/summary", "/v1/runs", "/v1/results"])
@pytest.mark.parametrize(
    ("param", "value"), [("until", "0001-01-01T00:00:00+14:00"), ("since", "9999-12-31T23:59:59-14:00")]
)
def test_out_of_range_times_are_422_not_500(client, path, param, value):
    """Defect 5: a time that UTC cannot hold is the client's mistake, said so."""
    r = client.get(path, params={param: value})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", param]
    assert f"{value} is out of range: in UTC it falls outside the years 1 to 9999" in error["msg"]


def test_extreme_times_that_utc_holds_are_served(client):
    assert client.get("/v1/runs", params={"until": "0001-01-01T00:00:00Z"}).json()["count"] == 0
    assert client.get("/v1/summary", params={"since": "9999-12-31T23:59:59+14:00"}).json()["runs"] == 0


def test_a_non_ascii_key_matches_sent_as_utf8(server):
    """Defect 8: the server's key ('clé-...') is compared as UTF-8 bytes, as docs/api.md asks of clients."""
    with httpx.Client(base_url=server[0], timeout=60) as c:
        r = c.get("/v1/runs", headers={"Authorization": f"Bearer {KEY}".encode()})
    assert r.status_code == 200, r.text
    with _elsewhere(server[0]) as c:
        r = c.get("/v1/runs", headers={"Authorization": f"Bearer {KEY}".encode("latin-1")})
    assert r.status_code == 401 and r.json()["detail"] == "wrong API key"


def test_a_long_file_name_fails_that_file_alone(client, face_jpeg):
    """Defect 9: an 8 KB file name is that file's error; the files around it are analysed and stored."""
    long_name = "n" * 8192 + ".jpg"
    files = [("before.jpg", face_jpeg), (long_name, face_jpeg), ("after.jpg", face_jpeg)]
    r = _analyze(client, files, campaign="long-name")
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["ok", "error", "ok"]
    assert results[1]["file"] == long_name[:1024] + "…"
    assert results[1]["error"] == "file name too long (8,196 characters, limit 1,024)"
    rows = _rows(client, run_id=r.json()["run_id"])
    assert [row["file"] for row in rows] == ["before.jpg", long_name[:1024] + "…", "after.jpg"]
    # A part header over 1 MB is a broken body: a 400 that says so, in JSON.
    r = _analyze(client, [("x" * (1024 * 1024 + 1), b"data"), ("a.jpg", face_jpeg)])
    assert r.status_code == 400 and r.json()["detail"] == "invalid multipart body: Maximum header size exceeded"


def test_wrong_keys_are_throttled_per_address(server, client):
    """Defect 10: 10 wrong keys in a row, then 429 with Retry-After, the right key included; other
    addresses are not held back."""
    start = time.monotonic()
    with _elsewhere(server[0]) as c:
        wrong = {"Authorization": b"Bearer wrong-key-0123456789abcdef"}
        codes = [c.get("/v1/runs", headers=wrong).status_code for _ in range(30)]
        locked = c.get("/v1/runs", headers=AUTH)
    assert time.monotonic() - start < 6, "the test relies on no token coming back meanwhile"
    assert codes == [401] * 10 + [429] * 20
    assert locked.status_code == 429 and 1 <= int(locked.headers["retry-after"]) <= 6
    assert locked.json()["detail"].startswith("too many wrong API keys from this address: try again in ")
    assert client.get("/v1/runs").status_code == 200


def test_serve_refuses_a_weak_key():
    """Defect 10: a one-character key is refused at start-up, in one line, exit 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "src.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT,
        env={**os.environ, "FER_API_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: FER_API_KEY is too short: 1 of at least 16 characters")
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def keyless_server(trained_model, tmp_path_factory):
    """The API without FER_API_KEY (loopback only); yields its base URL."""
    proc, base, _ = _start_server(trained_model, tmp_path_factory.mktemp("keyless"), FER_API_KEY="")
    try:
        yield base
    finally:
        stop_process(proc, timeout=20)


@pytest.mark.parametrize(
    "header",
    [
        ("Forwarded", "for=203.0.113.9"),
        ("Forwarded", 'for="[::1]";proto=https'),
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Real-IP", "203.0.113.9"),
        ("Via", "1.1 proxy"),
    ],
)
def test_no_key_mode_refuses_calls_through_a_proxy(keyless_server, header):
    """Defect 11: without a key, a call that carries any proxy header is refused, RFC 7239's included."""
    assert httpx.get(f"{keyless_server}/v1/runs").status_code == 200  # this machine, directly
    r = httpx.get(f"{keyless_server}/v1/runs", headers=[header])
    assert r.status_code == 403
    assert f"came through a proxy (it carries a {header[0]} header)" in r.json()["detail"]
    health = httpx.get(f"{keyless_server}/health", headers=[header])
    assert health.status_code == 200 and health.json()["auth"] == "loopback_only"


def test_with_a_key_calls_through_a_proxy_are_served(client):
    assert client.get("/v1/runs", headers={"Forwarded": "for=203.0.113.9", "Via": "1.1 proxy"}).status_code == 200


def test_serve_refuses_a_public_address_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "FER_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "src.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: refusing to serve on 0.0.0.0 without an API key: set FER_API_KEY")
    assert "Traceback" not in proc.stderr


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.2", "example.org", ""))


def test_tags_split_on_commas_and_repeats():
    assert split_tags(["a, b", "c", "a", " ", ""]) == ["a", "b", "c"]
    assert split_tags(None) == []


def test_auth_rules():
    assert auth_problem("k3y", "Bearer k3y", "10.1.2.3") is None
    assert auth_problem("k3y", "bearer  k3y ", "10.1.2.3") is None
    assert auth_problem("k3y", "Bearer k3", "127.0.0.1") == (401, "wrong API key")
    assert auth_problem("k3y", None, "127.0.0.1")[0] == 401  # a key set is asked of local callers too
    assert auth_problem("", None, "127.0.0.1") is None  # no key: loopback callers only
    assert auth_problem("", None, "::1") is None
    status, detail = auth_problem("", "Bearer anything", "192.168.1.20")
    assert status == 403 and "FER_API_KEY is not set" in detail


def test_auth_compares_bytes_and_refuses_proxies_without_a_key():
    key = "clé-0123456789abcdef"
    assert auth_problem(key, f"Bearer {key}".encode(), "10.1.2.3") is None
    # Starlette hands headers as latin-1 text: the same bytes, the same answer.
    assert auth_problem(key, f"Bearer {key}".encode().decode("latin-1"), "10.1.2.3") is None
    assert auth_problem(key, f"Bearer {key}".encode("latin-1"), "10.1.2.3") == (401, "wrong API key")
    status, detail = auth_problem("", None, "127.0.0.1", forwarded_by="Forwarded")
    assert status == 403 and "came through a proxy (it carries a Forwarded header)" in detail
    assert auth_problem(key, f"Bearer {key}".encode(), "127.0.0.1", forwarded_by="Forwarded") is None


def test_key_strength_and_serve_rules():
    assert key_problem("") is None and key_problem("k" * 16) is None and key_problem("é" * 16) is None
    assert (
        key_problem("x")
        == "FER_API_KEY is too short: 1 of at least 16 characters (make one with: openssl rand -hex 32)"
    )
    assert "not valid UTF-8" in key_problem("\udce9" * 20)  # a non-UTF-8 byte in the environment
    assert serve_problem("", "0.0.0.0").startswith("refusing to serve on 0.0.0.0 without an API key")
    assert serve_problem("", "127.0.0.1") is None
    assert serve_problem("short", "127.0.0.1").startswith("FER_API_KEY is too short")  # a proxy may be in front
    assert serve_problem(KEY, "0.0.0.0") is None
    with pytest.raises(ValueError, match="too short"):
        create_app(ApiSettings(api_key="x"))


def test_throttle_refills_and_stays_bounded():
    now = [0.0]
    throttle = AuthThrottle(burst=3, refill_s=10, max_clients=50, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 10 and throttle.retry_after("10.0.0.2") == 0
    now[0] = 4.0
    assert throttle.retry_after("10.0.0.1") == 6
    now[0] = 10.0
    assert throttle.retry_after("10.0.0.1") == 0
    for i in range(3):  # one IPv6 /64 is one client
        throttle.failed(f"2001:db8::{i}")
    assert throttle.retry_after("2001:db8::ffff") > 0 and throttle.retry_after("2001:db8:0:1::1") == 0
    for i in range(1000):
        throttle.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(throttle) == 50
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1" and client_key("2001:db8::1") == "2001:db8::/64"


@pytest.mark.parametrize(("burst", "locked"), [(16_000, True), (16_001, False)])
def test_throttle_counts_every_failure_across_threads(burst, locked):
    """8 threads x 2000 failures on one address: exactly 16000 counted, none lost to a race."""
    throttle = AuthThrottle(burst=burst, refill_s=1e9, clock=lambda: 0.0)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [
            threading.Thread(target=lambda: [throttle.failed("10.0.0.1") for _ in range(2000)]) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert (throttle.retry_after("10.0.0.1") > 0) is locked


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads the server's peak memory from /proc")
def test_eight_huge_pngs_at_once_keep_memory_bounded_and_give_it_back(server):
    """Issue 19, part 3: eight parallel requests, each one 7000x7000 PNG of ~160 KB (49 M pixels,
    ~200 MB decoded), raise the server's peak RSS by at most 1 GB, and its RSS comes back after."""
    pixels = np.full((7000, 7000, 3), 200, np.uint8)
    pixels[3000:3100, 3000:3100] = (10, 20, 30)
    huge = png_bytes(pixels)
    del pixels
    assert len(huge) < 200_000
    Path(f"/proc/{server[1]}/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _memory_kb(server[1])["VmRSS"]

    def call(i: int):
        with httpx.Client(base_url=server[0], headers=AUTH, timeout=120) as c:
            return _analyze(c, [(f"huge_{i}.png", huge)], store="false")

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, range(8)))
    assert [r.status_code for r in answers] == [200] * 8, [r.text[:200] for r in answers]
    assert {(x["status"], x["width"]) for r in answers for x in r.json()["results"]} == {("no_face", 7000)}
    after = _memory_kb(server[1])
    peak_mb, kept_mb = (after["VmHWM"] - before) / 1024, (after["VmRSS"] - before) / 1024
    assert peak_mb <= 1024, f"the server's peak memory grew {peak_mb:.0f} MB"
    assert kept_mb < 100, f"the server kept {kept_mb:.0f} MB after the requests (peak +{peak_mb:.0f} MB)"


def test_server_log_has_no_tracebacks(server):
    """Last on purpose: nothing the tests sent made the server raise unhandled."""
    log = server[2].read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


def test_a_lost_database_answers_503_and_the_rest_keeps_serving(trained_model, tmp_path, face_jpeg):
    """A real PostgreSQL (its own, not the session's) goes down under a running API: store
    routes answer 503 with a JSON reason, analysis without storing and /health still work."""
    from db_servers import start_postgres

    database = start_postgres()
    try:
        proc, base, log = _start_server(trained_model, tmp_path, FER_DATABASE_URL=database.new_database())
        try:
            with httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:
                assert _analyze(c, [("a.jpg", face_jpeg)], campaign="X").status_code == 200
                assert len(_rows(c)) == 1
                database.stop()
                for r in (c.get("/v1/results"), c.get("/v1/summary"), _analyze(c, [("a.jpg", face_jpeg)])):
                    assert r.status_code == 503, r.text
                    assert r.json()["detail"].startswith("results store: ")
                r = _analyze(c, [("a.jpg", face_jpeg)], store="false")
                assert r.status_code == 200 and r.json()["results"][0]["status"] == "ok"
                assert c.get("/health").status_code == 200
        finally:
            stop_process(proc, timeout=20)
    finally:
        database.stop()
    assert "Traceback" not in log.read_text()


def test_a_deleted_sqlite_store_never_answers_success(trained_model, tmp_path, face_jpeg):
    """Issue #19, defect 2: the SQLite file's folder removed under a running server. Every
    write after that is refused with 503 and no run id, and nothing is answered as saved."""
    folder = tmp_path / "store"
    folder.mkdir()
    proc, base, log = _start_server(
        trained_model, tmp_path, FER_DATABASE_URL=f"sqlite:///{(folder / 'results.db').as_posix()}"
    )
    try:
        with httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:
            assert _analyze(c, [("a.jpg", face_jpeg)], campaign="X").status_code == 200
            shutil.rmtree(folder)
            answers = [_analyze(c, [("a.jpg", face_jpeg)], campaign="X") for _ in range(5)]
            assert [r.status_code for r in answers] == [503] * 5, [r.text for r in answers]
            assert all("run_id" not in r.json() for r in answers)
            assert "removed or replaced" in answers[0].json()["detail"]
    finally:
        stop_process(proc, timeout=20)
    assert "Traceback" not in log.read_text()


def test_results_and_summary_count_finished_runs_unless_asked(trained_model, tmp_path):
    """A run that never finished (its writer died) is left out of /v1/results and /v1/summary
    unless include_unfinished=true."""
    from src.analytics.store import Store

    proc, base, log = _start_server(trained_model, tmp_path)
    try:
        with Store(f"sqlite:///{(tmp_path / 'results.db').as_posix()}") as store:
            run_id = store.start_run("cli", campaign="Unfinished")
            store.add_rows(
                run_id, [{"file": "x.jpg", "face": 0, "emotion": "happy", "confidence": 0.9, "status": "ok"}]
            )
        with httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:
            assert _rows(c, campaign="Unfinished") == []
            rows = _rows(c, campaign="Unfinished", include_unfinished="true")
            assert [r["run_id"] for r in rows] == [run_id]
            assert c.get("/v1/summary", params={"campaign": "Unfinished"}).json()["faces"] == 0
            summary = c.get("/v1/summary", params={"campaign": "Unfinished", "include_unfinished": "true"}).json()
            assert summary["faces"] == 1
    finally:
        stop_process(proc, timeout=20)


def test_a_video_is_followed_person_by_person_and_stored(client, tmp_path):
    """POST /v1/analyze-video: one row per face per sampled frame with time and track id, the
    drifting face counted as one person, the run stored with its people; limits and bad input."""
    from camera_support import drift_clip

    clip = drift_clip(tmp_path / "clip.avi", seconds=4.0).read_bytes()
    r = client.post(
        "/v1/analyze-video",
        files={"file": ("visit.avi", clip, "video/x-msvideo")},
        data={"campaign": "Video API", "every": "0.5"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["samples"] >= 6 and {f["track_id"] for f in body["faces"]} == {0}
    assert [p["kind"] for p in body["people"]] == ["track"] and body["people"][0]["samples"] == body["samples"]
    assert body["duration_s"] == pytest.approx(4.0, abs=0.2)
    runs = client.get("/v1/runs", params={"campaign": "Video API"}).json()["runs"]
    assert [(run["run_id"], run["people"]) for run in runs] == [(body["run_id"], 1)]
    assert client.get("/v1/summary", params={"campaign": "Video API"}).json()["people"] == 1

    bad = client.post("/v1/analyze-video", files={"file": ("x.mp4", b"not a video", "video/mp4")})
    assert bad.status_code == 422 and "x.mp4" in bad.json()["detail"]


def test_a_video_over_the_duration_limit_is_refused(trained_model, tmp_path):
    from camera_support import drift_clip

    clip = drift_clip(tmp_path / "clip.avi", seconds=3.0).read_bytes()
    proc, base, log = _start_server(trained_model, tmp_path, FER_API_MAX_VIDEO_S="2")
    try:
        with httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:
            r = c.post("/v1/analyze-video", files={"file": ("long.avi", clip, "video/x-msvideo")})
            assert r.status_code == 413 and r.json()["detail"] == "video too long (3 s, limit 2 s)"
    finally:
        stop_process(proc, timeout=20)


# --- Issue 19, part 3: slow clients, a full server, shutdown ------------------------------------


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=15)
    return conn


def _read_until_closed(conn: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start, data = time.monotonic(), b""
    with conn:
        while chunk := conn.recv(65536):
            data += chunk
    return data, time.monotonic() - start


def _read_response(conn: socket.socket) -> bytes:
    """One whole response (with a Content-Length) from a connection that stays open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def _stalled_upload(base: str) -> socket.socket:
    """A connection whose upload stops after its headers and the first bytes of its body."""
    conn = _connect(base)
    head = (
        b"POST /v1/analyze HTTP/1.1\r\nHost: test\r\nAuthorization: " + AUTH["Authorization"] + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n"
    )
    conn.sendall(head)
    return conn


@pytest.fixture(scope="module")
def impatient_server(trained_model, tmp_path_factory):
    """The API with 1 s for a request's headers and 1 s of silence in a body; yields its base URL."""
    proc, base, _ = _start_server(
        trained_model, tmp_path_factory.mktemp("impatient"), FER_API_HEADER_TIMEOUT_S="1", FER_API_BODY_IDLE_S="1"
    )
    try:
        yield base
    finally:
        stop_process(proc, timeout=20)


def test_slow_headers_are_answered_408_and_closed(impatient_server):
    """Slowloris: part of the headers, then nothing (or a byte at a time) is 408 and a closed
    connection after FER_API_HEADER_TIMEOUT_S; so is a connection on which nothing comes."""
    partial = _connect(impatient_server)
    partial.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
    answer, waited = _read_until_closed(partial)
    assert answer.startswith(b"HTTP/1.1 408 ") and 0.9 < waited < 5, (answer, waited)
    assert b"request headers too slow: not all in after 1 s (FER_API_HEADER_TIMEOUT_S)" in answer

    trickle = _connect(impatient_server)
    start = time.monotonic()
    with pytest.raises(OSError):  # the server closes it while it trickles
        for byte in b"GET /health HTTP/1.1\r\nX-Slow: " + b"x" * 100:
            trickle.sendall(bytes([byte]))
            time.sleep(0.05)
    assert time.monotonic() - start < 5
    trickle.close()

    silent = _connect(impatient_server)
    answer, waited = _read_until_closed(silent)
    assert answer == b"" and 0.9 < waited < 5

    # A kept-alive connection is timed again from its next request's first byte.
    with _connect(impatient_server) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert _read_response(conn).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.5)
        conn.sendall(b"GET /health HTTP/1.1\r\n")
        answer, waited = _read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 408 ") and waited < 5
    assert httpx.get(f"{impatient_server}/health").status_code == 200


def test_a_slow_body_is_answered_408(impatient_server):
    """An upload that stops after its headers is 408 after FER_API_BODY_IDLE_S, in JSON, and closed;
    one answered before its body was read is closed after FER_API_HEADER_TIMEOUT_S."""
    conn = _stalled_upload(impatient_server)
    answer, waited = _read_until_closed(conn)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower(), answer
    assert json.loads(body) == {"detail": "request body too slow: nothing came for 1 s (FER_API_BODY_IDLE_S)"}
    assert 0.9 < waited < 5

    # Refused on its headers (no key), then stalled: nobody reads that body; answered, then closed.
    conn = _connect(impatient_server)
    conn.sendall(
        b"POST /v1/analyze HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 100000\r\n\r\n--b\r\n"
    )
    answer, waited = _read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 401 ") and b"missing API key" in answer and 0.9 < waited < 5


def test_a_stalled_upload_does_not_hold_the_shutdown(trained_model, tmp_path):
    """SIGTERM with an upload stalled after its headers and a connection stuck in its headers
    open (default timeouts): the upload is answered 503, and the server exits within 10 s."""
    proc, base, log = _start_server(trained_model, tmp_path)
    try:
        stalled = _stalled_upload(base)
        stuck = _connect(base)
        stuck.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        assert time.monotonic() - start < 10
        answer, _ = _read_until_closed(stalled)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"the server is shutting down" in answer, answer
        assert _read_until_closed(stuck)[0] == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()


def test_analysis_slots_wait_then_answer_503(monkeypatch):
    """A full server: a request waits FER_API_QUEUE_TIMEOUT_S for a slot, then 503 with Retry-After;
    images decoded at once stay within their memory; shutdown ends every wait at once."""
    from fastapi import HTTPException

    from src.api import capacity
    from src.api.capacity import AnalysisSlots

    monkeypatch.setattr(capacity, "POLL_S", 0.05)
    stopping = threading.Event()
    slots = AnalysisSlots(1, decode_bytes=100, timeout_s=0.3, stopping=stopping)
    with slots.slot():
        start = time.monotonic()
        with pytest.raises(HTTPException) as busy:
            with slots.slot():
                pass
        assert 0.25 < time.monotonic() - start < 2
        assert busy.value.status_code == 503 and int(busy.value.headers["Retry-After"]) >= 1
        assert "FER_API_ANALYSES=1" in busy.value.detail
        with slots.decoding(60):
            with pytest.raises(HTTPException, match="memory to decode this image"):
                with slots.decoding(60):
                    pass
            assert slots.decoding_bytes == 60
        with slots.decoding(10_000):  # larger than the budget: alone
            assert slots.decoding_bytes == 100
        assert slots.decoding_bytes == 0
        stopping.set()
        start = time.monotonic()
        with pytest.raises(HTTPException, match="shutting down"):
            with slots.slot():
                pass
        assert time.monotonic() - start < 0.2


def test_a_request_holds_little_memory_besides_its_first_megabyte_of_files():
    """Uploads are spooled: the first ~1 MB of a request's files in memory, the rest on disk."""
    import asyncio

    from src.api.forms import SPOOL_MAX, read_multipart

    size = 600 * 1024
    parts = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="%d.bin"\r\n\r\n' % i + bytes(size) + b"\r\n"
        for i in range(3)
    )

    async def body():
        for i in range(0, len(parts + b"--b--\r\n"), 50_000):
            yield (parts + b"--b--\r\n")[i : i + 50_000]

    form = asyncio.run(
        read_multipart("multipart/form-data; boundary=b", body(), max_files=10, max_fields=10, max_part_size=1024)
    )
    uploads = [value for _, value in form.multi_items()]
    assert [u.size for u in uploads] == [size] * 3 and size < SPOOL_MAX < 2 * size
    assert [u.file._rolled for u in uploads] == [False, True, True]  # SpooledTemporaryFile: on disk
    for upload in uploads:
        assert upload.file.read() == bytes(size)
        upload.file.close()
