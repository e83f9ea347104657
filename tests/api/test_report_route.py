"""``GET /v1/report`` (src/api/report.py) over real HTTP: ``python -m src.cli serve`` with the deployed
model and a temporary SQLite store of demo runs, called with httpx, as tests/api/test_api.py does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support import free_port, stop_process

from src import config
from src.analytics.demo import fill_demo_store
from src.analytics.store import Store
from src.engine.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]
KEY = "report-test-key-0123456789abcdef"
START_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_report")
    url = f"sqlite:///{(tmp / 'results.db').as_posix()}"
    with Store(url) as store:
        fill_demo_store(store, seed=11, weeks=2)
    port, log = free_port(), tmp / "server.log"
    env = {
        **os.environ,
        "FER_MODEL": str(config.MODEL_FILE),
        "FER_DATABASE_URL": url,
        "FER_API_KEY": KEY,
        "FER_ONNX_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "src.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        stop_process(proc, timeout=20)


def test_report_route_serves_html_and_pdf_404_when_empty_and_needs_the_key(server):
    campaigns = [("campaign", "Spring ad A"), ("campaign", "Spring ad B")]
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as client:
        r = client.get("/v1/report", params=campaigns)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["content-disposition"].startswith('attachment; filename="emotion_report_')
        assert "default-src 'none'" in r.headers["content-security-policy"]
        version = read_manifest(config.MODEL_FILE)["version"]  # the deployed model's, in the method section
        assert "People counted" in r.text and "Pearson chi-square" in r.text and version in r.text

        r = client.get("/v1/report", params=[*campaigns, ("format", "pdf"), ("source", "batch")])
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF-")

        sure = client.get("/v1/report", params=[*campaigns, ("include_uncertain", "false")])
        assert sure.status_code == 200 and "People counted" in sure.text  # the demo's people are all sure

        r = client.get("/v1/report", params={"campaign": "No such campaign"})
        assert r.status_code == 404 and "No people in this selection" in r.json()["detail"]

        r = client.get("/v1/report")
        assert r.status_code == 422  # a campaign is required

        r = client.get("/v1/report", params={"campaign": "x" * 300})
        assert r.status_code == 422 and "limit" in r.json()["detail"]

    r = httpx.get(f"{server}/v1/report", params=campaigns, timeout=30)
    assert r.status_code == 401
