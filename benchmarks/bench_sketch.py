"""Draw-tab latency: one drawing through preprocessing + the bundled LeNet-5, in the engine and
through the running app's ``/predict_digit`` endpoint.

Run: ``python benchmarks/bench_sketch.py`` (starts the app on a free port for the second part).
Prints medians and 95th percentiles; goals: engine <= 2 ms, app round trip <= 150 ms.
Last measured (2026-11-29, 2-core CPU VM): engine 1.23 ms median (p95 1.65 ms); app round trip
over HTTP 43.4 ms median (p95 51.5 ms); through gradio_client 134.6 ms median (p95 225.6 ms).
gradio_client's own per-call work is most of its figure: on this machine a Gradio endpoint that
does nothing with an image input measures ~180-205 ms through gradio_client and ~29 ms over HTTP.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tlcore.runs.checkpoints import load_run  # noqa: E402
from tlcore.insight.predict import predict_probs  # noqa: E402
from tlcore.data.sketch import sketch_batch  # noqa: E402


def canvas(seed: int) -> np.ndarray:
    """A 420x420 RGBA layer with a random thick stroke, as the sketchpad sends."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("L", (420, 420), 0)
    pts = [tuple(rng.integers(60, 360, 2).tolist()) for _ in range(4)]
    ImageDraw.Draw(img).line(pts, fill=255, width=18)
    a = np.asarray(img)
    return np.dstack([np.zeros_like(a)] * 3 + [a])


def pct(v: list[float], q: float) -> float:
    return float(np.percentile(v, q))


def main():
    torch.set_num_threads(1)  # one drawing is too small to split across threads
    model, _ = load_run(ROOT / "assets" / "models" / "lenet5-mnist")
    drawings = [canvas(i) for i in range(50)]
    for d in drawings[:5]:
        predict_probs(model, sketch_batch([d], model.spec))
    times = []
    for _ in range(4):
        for d in drawings:
            t = time.perf_counter()
            predict_probs(model, sketch_batch([d], model.spec))
            times.append((time.perf_counter() - t) * 1e3)
    print(f"engine: preprocessing + prediction of one 420x420 drawing: median {statistics.median(times):.2f} ms, "
          f"p95 {pct(times, 95):.2f} ms over {len(times)}")

    import io

    import httpx
    from e2e_server import AppServer, http_call
    from gradio_client import Client, handle_file
    from PIL import Image

    tmp = Path(tempfile.mkdtemp())
    server = AppServer(tmp)
    try:
        pngs, paths = [], []
        for i, d in enumerate(drawings[:20]):
            buf = io.BytesIO()
            Image.fromarray(d, "RGBA").save(buf, format="PNG")
            pngs.append(buf.getvalue())
            paths.append(tmp / f"d{i}.png")
            paths[-1].write_bytes(pngs[-1])
        # Gradio's plain HTTP API: upload, call, read the result's server-sent events.
        http = httpx.Client(base_url=server.url.rstrip("/"), timeout=30)
        event, data = http_call(server.url, "predict_digit", pngs[0], http)
        assert event == "complete", (event, data)
        rt = []
        for _ in range(3):
            for png in pngs:
                t = time.perf_counter()
                http_call(server.url, "predict_digit", png, http)
                rt.append((time.perf_counter() - t) * 1e3)
        print(f"app: /predict_digit round trip over HTTP (upload + call + result): median "
              f"{statistics.median(rt):.1f} ms, p95 {pct(rt, 95):.1f} ms over {len(rt)}")
        # The same through gradio_client, whose own per-call work dominates (see the module docstring).
        client = Client(server.url, verbose=False)
        client.predict(handle_file(str(paths[0])), api_name="/predict_digit")
        rt = []
        for _ in range(3):
            for p in paths:
                t = time.perf_counter()
                client.predict(handle_file(str(p)), api_name="/predict_digit")
                rt.append((time.perf_counter() - t) * 1e3)
        print(f"app: /predict_digit round trip through gradio_client: median {statistics.median(rt):.1f} ms, "
              f"p95 {pct(rt, 95):.1f} ms over {len(rt)}")
    finally:
        server.close()


if __name__ == "__main__":
    main()
