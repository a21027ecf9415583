"""What a killed server leaves in the temp folder (its sessions' folders, its stop files) is
removed by the next one, and nothing of a server still running is (issue #17)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tlcore.ui import leftovers
from tlcore.ui.session import Session

pytestmark = pytest.mark.skipif(leftovers.fcntl is None, reason="no POSIX file locks here (Windows): nothing is swept")

ROOT = Path(__file__).resolve().parents[1]
# A server's part, in a child process: a session with a folder holding a file, and a stop file.
CHILD = """
from tlcore.ui.session import Session
s = Session()
(s.folder / "upload.zip").write_bytes(b"x" * 100)
stop = s.stop_token(as_file=True)
stop.stop()
print(s.folder, stop.path, flush=True)
import time; time.sleep(600)
"""


def _server_parts(tmp: Path, n: int) -> list[tuple[subprocess.Popen, Path, Path]]:
    """``n`` server parts started together (each spends seconds importing), once each is ready."""
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}) for _ in range(n)]
    return [(proc, *map(Path, proc.stdout.readline().split())) for proc in procs]


@pytest.mark.kill
def test_a_killed_servers_folders_go_and_a_live_ones_stay(tmp_path):
    (killed, dead_folder, dead_stop), (live, live_folder, live_stop) = _server_parts(tmp_path, 2)
    old = tmp_path / "tlcore-session-abc123"  # an untagged folder (an older version): not ours to judge
    old.mkdir()
    try:
        assert dead_folder.parent == tmp_path and (dead_folder / "upload.zip").exists() and dead_stop.exists()
        killed.send_signal(signal.SIGKILL)  # no cleanup runs
        killed.wait(10)
        assert dead_folder.exists() and dead_stop.exists()
        removed = leftovers.sweep(tmp_path)
        assert not dead_folder.exists() and not dead_stop.exists()
        assert set(removed) >= {dead_folder, dead_stop}
        assert live_folder.exists() and live_stop.exists() and old.exists()
        assert len(list(tmp_path.glob("tlcore-owner-*.lock"))) == 1  # the live one's
        assert leftovers.sweep(tmp_path) == []  # nothing more to do
    finally:
        live.kill()
        live.wait(10)
    leftovers.sweep(tmp_path)
    assert list(tmp_path.glob("tlcore-session-*")) == [old] and not list(tmp_path.glob("tlcore-owner-*"))
    assert not list((tmp_path / "tlcore-stops").iterdir())


def test_this_process_never_sweeps_its_own_sessions(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    s = Session()
    own = leftovers.owner()
    assert s.folder.parent == tmp_path and s.folder.name.startswith(f"tlcore-session-{own.tag}-")
    assert leftovers.sweep(tmp_path) == [] and s.folder.exists() and own.lock.exists()


@pytest.mark.slow  # a server's part in a fresh interpreter, left to exit
def test_a_server_that_exits_normally_leaves_nothing(tmp_path):
    code = CHILD.replace("import time; time.sleep(600)", "")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}).stdout
    folder, stop = map(Path, out.split())
    assert folder.parent == tmp_path and not folder.exists() and not stop.exists()
    assert not list(tmp_path.glob("tlcore-owner-*")) and not list(tmp_path.glob("tlcore-session-*"))
