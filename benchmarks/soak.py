"""Soak: many sessions come and go; memory and temp folders must come back.

Starts the real app (``python app.py``, its own TMPDIR so only its session folders are counted),
then opens sessions through the API one after another (``--parallel`` at a time), each a
gradio_client Client: load the digits dataset, predict a drawing, in every ``--train-every``-th
session train a tiny run (LeNet-5 linear probe on digits, 2 epochs), then close the client
(its heartbeat ends: Gradio's unload ends the session, which removes its folder). Prints the
sessions opened and closed, the session folders left, and the app's RSS after the first
``--warm`` sessions and after all of them, with their ratio.

Run: ``python benchmarks/soak.py [--sessions 200] [--warm 20] [--parallel 4] [--train-every 10]
[--step 60] [--forget-closed]``. Goal: 0 folders left; RSS after 200 sessions within 15% of RSS after 20.

Last measured (2026-11-30, 2-core CPU VM shared with other work), 4 sessions at a time, every
10th training 2 epochs; 0 session folders left after every step:

  run                                   RSS after 20   200          ratio   sessions/errors
  200 sessions                          932.6 MB       1047.0 MB    1.123   200 / 0 (115 s)
  440 sessions                          951.6 MB       1053.7 MB    1.107   440 / 0; 1122.9 MB at 440 (1.180)
  200, no training                      947.0 MB       1025.1 MB    1.082   200 / 0
  260, --forget-closed                  953.2 MB       1035.2 MB    1.086   260 / 0
  260, TLCORE_STATE_SESSIONS=60         956.3 MB        998.5 MB    1.044   260 / 1; 997.5 MB at 260 (1.043)

RSS grows ~0.4 MB a session, with or without training and even when Gradio drops a closed
session's state after 1 s (--forget-closed): it is Gradio's record of each session (a copy of
every component's config), kept until ``state_session_capacity`` newer ones push it out. With
that capped (60 here, TLCORE_STATE_SESSIONS) RSS levels off; the app caps it at 1000 (~0.4 GB;
Gradio's default 10,000 would be ~4 GB). The one error (of 1,360 sessions over all runs; one
more in an earlier run on a busier machine): "peer closed connection without sending complete
message body" on /load_dataset, with the machine's load average near 10.
"""
from __future__ import annotations

import argparse
import os
import ssl
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from e2e_server import AppServer  # noqa: E402

SHARED_TLS = ssl.create_default_context()  # see load_test.py: one context, not three per call
TINY = (2, 64, 0.1, "sgd", "onecycle", 1.0, 0.1, "off", 0, 0)  # /train: 2 epochs, features cached


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("tlcore-session-*"))


def drawing(path: Path) -> str:
    img = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(img).line([(80, 60), (200, 60), (120, 240)], fill=0, width=18)
    img.save(path)
    return str(path)


class Soak:
    def __init__(self, url: str, png: str, train_every: int):
        self.url, self.png, self.train_every = url, png, train_every
        self.opened = self.closed = self.trained = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def session(self, i: int) -> None:
        """One visitor: open, load, predict, maybe train, close."""
        from gradio_client import Client, handle_file

        c = Client(self.url, verbose=False, ssl_verify=SHARED_TLS)
        with self.lock:
            self.opened += 1
        step = "load"
        try:
            c.predict("digits", None, 0, 0.1, 0, api_name="/load_dataset")
            step = "predict"
            out = c.predict(handle_file(self.png), api_name="/predict_digit")
            assert out["label"] == "7", out
            if i % self.train_every == 0:
                step = "train"
                status = c.predict(*TINY, api_name="/train")[3]
                assert status.startswith("**Completed.**"), status
                with self.lock:
                    self.trained += 1
        except Exception as e:  # counted and shown, the soak goes on
            with self.lock:
                self.errors.append(f"session {i}, {step}: {type(e).__name__}: {str(e)[:150]}")
        finally:
            c.close()
            with self.lock:
                self.closed += 1

    def run(self, first: int, last: int, parallel: int) -> None:
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(self.session, range(first, last)))


def settle(tmp: Path, timeout: float = 60) -> int:
    """Wait until the closed sessions' folders are gone (the unload runs after the heartbeat ends)."""
    t0 = time.monotonic()
    while folders(tmp) and time.monotonic() - t0 < timeout:
        time.sleep(0.5)
    time.sleep(2)  # the last unloads finish freeing
    return len(folders(tmp))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--warm", type=int, default=20, help="sessions before the first RSS figure")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--train-every", type=int, default=10, help="every n-th session trains a tiny run")
    ap.add_argument("--forget-closed", action="store_true",
                    help="Gradio drops closed sessions' state after 1 s instead of an hour (tells its memory from ours)")
    ap.add_argument("--step", type=int, default=60, help="sessions between two RSS figures after the first")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    app_tmp = tmp / "app-tmp"
    app_tmp.mkdir()
    png = drawing(tmp / "seven.png")
    env = {"TMPDIR": str(app_tmp), "GRADIO_TEMP_DIR": str(app_tmp / "gradio")}
    if args.forget_closed:  # Gradio's own test switch: a closed session's state goes after 1 s, not an hour
        env["GRADIO_IS_E2E_TEST"] = "1"
    app = AppServer(tmp, env=env)
    t0 = time.perf_counter()
    try:
        soak = Soak(app.url, png, args.train_every)
        soak.run(0, args.warm, args.parallel)
        left_warm = settle(app_tmp)
        rss_warm = rss_mb(app.proc.pid)
        print(f"after {args.warm:3d} sessions: RSS {rss_warm:7.1f} MB, session folders left {left_warm}")
        rss_end, left = rss_warm, left_warm  # when --sessions is not above --warm
        for first in range(args.warm, args.sessions, args.step):  # the curve between, to see a trend
            last = min(first + args.step, args.sessions)
            soak.run(first, last, args.parallel)
            left = settle(app_tmp)
            rss_end = rss_mb(app.proc.pid)
            print(f"after {last:3d} sessions: RSS {rss_end:7.1f} MB, session folders left {left}")
        print(f"sessions opened {soak.opened}, closed {soak.closed}, trained {soak.trained}, "
              f"errors {len(soak.errors)}; {time.perf_counter() - t0:.0f} s")
        for e in soak.errors[:5]:
            print("    error:", e)
        print(f"RSS {args.sessions} / RSS {args.warm}: {rss_end / rss_warm:.3f} (goal <= 1.15); folders left {left} "
              f"(goal 0)")
    finally:
        app.close()


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
