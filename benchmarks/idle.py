"""What an app left open costs when nobody uses it: the CPU of the studio's server (``python app.py``)
over some idle seconds, against a do-nothing Gradio app with Gradio's own queue settings. A Space
or a classroom server spends most of its life like this.

Run: ``python benchmarks/idle.py [--seconds 10]``. No client connects; each server is started (the
tests' ``AppServer``, and ``load_test.NoopServer`` for the floor), left to settle for 5 s, then
measured (user + system CPU of its process, all threads).

Last measured (2026-12-05, 2-core AMD EPYC VM, alone, --seconds 20), share of one core:

  do-nothing Gradio app (Gradio's queue: work every 1 ms, progress every 10 ms)   4.6-6.0%
  the studio (``tlcore.ui._quiet_queue``: every 20 ms and 100 ms)                 1.3-1.6%  (0.28x)
  the studio before it (b10049f)                                                  5.8%      (1.21x)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from e2e_server import AppServer  # noqa: E402
from load_test import NoopServer  # noqa: E402
from suite_cpu import stat_fields  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_share(server: AppServer, seconds: float) -> float:
    """The share of one core that ``server`` (started, answering) uses while idle; then it is closed."""
    try:
        time.sleep(5)  # the first page request's work settles
        before, t0 = _cpu_seconds(server.proc.pid), time.monotonic()
        time.sleep(seconds)
        return (_cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)
    finally:
        server.close()


def main():
    if not Path("/proc/self/stat").exists():
        sys.exit("This benchmark reads /proc (Linux).")
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        floor = idle_share(NoopServer(Path(tmp)), args.seconds)
        studio = idle_share(AppServer(Path(tmp)), args.seconds)
    print(f"idle for {args.seconds:.0f} s, share of one core: do-nothing Gradio app {floor:.1%}, "
          f"the studio {studio:.1%} ({studio / floor:.2f}x)")


if __name__ == "__main__":
    main()
