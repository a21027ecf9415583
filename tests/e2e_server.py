"""Start the real app (``python app.py``) on a free port for end-to-end tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    def __init__(self, tmp: Path, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp / "app.log"
        env = {**os.environ, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT)
        self.ready_after = self._wait()

    def _wait(self, timeout: float = 60) -> float:
        while time.monotonic() - self.t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return time.monotonic() - self.t0
            except OSError:
                time.sleep(0.25)
        raise TimeoutError(f"app did not answer in {timeout} s: {self.log.read_text()[-2000:]}")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def http_call(url: str, api_name: str, png: bytes, client=None) -> tuple[str, object]:
    """Call an image endpoint through Gradio's plain HTTP API (the app's "Use via API" curl recipe):
    upload the file, start the call, read its server-sent events. Returns (event, data)."""
    import json

    import httpx

    h = client or httpx.Client(base_url=url.rstrip("/"), timeout=30)
    path = h.post("/gradio_api/upload", files={"files": ("drawing.png", png, "image/png")}).json()[0]
    event_id = h.post(f"/gradio_api/call/{api_name}",
                      json={"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}]}).json()["event_id"]
    with h.stream("GET", f"/gradio_api/call/{api_name}/{event_id}") as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                return event, json.loads(line[5:])
    return "closed", None
