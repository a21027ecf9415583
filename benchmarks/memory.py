"""The app's memory: peak RSS after loading MNIST, cifar10-mini and digits in turn, three rounds.

Run: ``TLCORE_DATA_DIR=../shared/datasets python benchmarks/memory.py``. Starts the real app
(``python app.py``), drives one session through ``gradio_client`` and reads the server
process's resident memory (VmRSS) and its peak (VmHWM) from /proc after each load. A session
holds one dataset at a time; repeating the round shows whether memory keeps growing.
Goal: peak <= 2 GB.

Last measured (2026-11-29, 2-core CPU VM): started 689 MB; after MNIST 928 MB, cifar10-mini
(uploaded zip, 12,000 JPEGs) 989 MB, digits 990 MB; rounds 2 and 3 end at 1,061 and 1,053 MB;
peak RSS 1,151 MB. A session holds one dataset at a time, so memory levels off.
"""
from __future__ import annotations

import os
import ssl
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from e2e_server import AppServer  # noqa: E402

UPLOAD = "upload a zip…"


def memory_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main():
    data = os.environ.get("TLCORE_DATA_DIR")
    if not data or not Path(data, "cifar10-mini.zip").is_file():
        sys.exit("Set TLCORE_DATA_DIR to the folder with MNIST/raw and cifar10-mini.zip.")
    from gradio_client import Client, handle_file

    server = AppServer(Path(tempfile.mkdtemp()))
    try:
        c = Client(server.url, verbose=False, ssl_verify=ssl.create_default_context())
        rss, peak = memory_mb(server.proc.pid)
        print(f"{'started':44s} RSS {rss:7.0f} MB   peak {peak:7.0f} MB")
        loads = [("mnist", ("mnist", None)), ("cifar10-mini.zip (upload)",
                                              (UPLOAD, handle_file(str(Path(data, "cifar10-mini.zip"))))),
                 ("digits", ("digits", None))]
        for rnd in range(1, 4):
            for label, (name, upload) in loads:
                t = time.perf_counter()
                summary = c.predict(name, upload, 0, 0.1, 0, api_name="/load_dataset")[0]
                assert "Not loaded" not in summary, summary
                rss, peak = memory_mb(server.proc.pid)
                print(f"round {rnd}: {label:34s} RSS {rss:7.0f} MB   peak {peak:7.0f} MB   "
                      f"({time.perf_counter() - t:.1f} s)")
        print(f"peak RSS of the app: {peak:.0f} MB (goal <= 2048 MB)")
    finally:
        server.close()


if __name__ == "__main__":
    main()
