"""What an app left open costs when nobody uses it: the CPU of the studio's server (``python app.py``)
over some idle seconds, against a do-nothing Gradio app with Gradio's own queue settings. A Space
or a classroom server spends most of its life like this.

Run: ``python benchmarks/idle.py [--seconds 10]``. No client connects; each server is started, left
to settle for 5 s, then measured (user + system CPU of its process, all threads).

Last measured (2026-12-05, 2-core AMD EPYC VM, alone, --seconds 20), share of one core:

  do-nothing Gradio app (Gradio's queue: work every 1 ms, progress every 10 ms)   4.6-6.0%
  the studio (``tlcore.ui._quiet_queue``: every 20 ms and 100 ms)                 1.3-1.6%  (0.28x)
  the studio before it (b10049f)                                                  5.8%      (1.21x)
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = """
import gradio as gr
with gr.Blocks() as demo:
    box = gr.Textbox()
    box.submit(lambda s: s, box, box)
demo.queue().launch()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_share(argv: list[str], seconds: float) -> float:
    """The share of one core that the server started by ``argv`` uses while idle."""
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"the server did not start: {log.read()[-2000:]!r}")
                    time.sleep(0.25)
            time.sleep(5)  # the first page request's work settles
            before, t0 = _cpu_seconds(proc.pid), time.monotonic()
            time.sleep(seconds)
            return (_cpu_seconds(proc.pid) - before) / (time.monotonic() - t0)
        finally:
            proc.terminate()
            proc.wait(10)


def main():
    if not Path("/proc/self/stat").exists():
        sys.exit("This benchmark reads /proc (Linux).")
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    floor = idle_share([sys.executable, "-c", FLOOR], args.seconds)
    studio = idle_share([sys.executable, "app.py"], args.seconds)
    print(f"idle for {args.seconds:.0f} s, share of one core: do-nothing Gradio app {floor:.1%}, "
          f"the studio {studio:.1%} ({studio / floor:.2f}x)")


if __name__ == "__main__":
    main()
