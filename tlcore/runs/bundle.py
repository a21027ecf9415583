"""A session as one zip: its runs' folders under their names, in order, and what it remembers
beside them (the app's studies), for "Save session" and "Open session".

Reading is as careful as reading a dataset (an Open session is an upload): the zip is checked
member by member (:mod:`tlcore.data.safezip`) before a byte is written, members are written
only inside the target folder, and each run folder must then read as a run, or the whole zip is
refused and nothing is kept.
"""
from __future__ import annotations

import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..data.safezip import ZipLimits, open_zip
from ..errors import TLCoreError
from .folder import read_metrics, read_run_config

MANIFEST = "session.json"
FORMAT = "tlcore-session/1"
MAX_RUNS = 200  # a class's session: far more than an hour's work makes


@dataclass
class Bundle:
    """What a session zip holds: run name -> its folder (extracted), and the rest of the manifest."""

    runs: dict[str, Path] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def write_bundle(runs: dict[str, Path], out: str | Path, extra: dict | None = None) -> Path:
    """Zip ``runs`` (name -> run folder, in order) and ``extra`` (JSON) into ``out``."""
    out = Path(out)
    folders = {name: _member_name(i, name) for i, name in enumerate(runs)}
    manifest = {"format": FORMAT, "runs": [{"name": n, "folder": folders[n]} for n in runs], "extra": extra or {}}
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for name, folder in runs.items():
            for f in sorted(Path(folder).iterdir()):
                if f.is_file():
                    zf.write(f, f"{folders[name]}/{f.name}")
    tmp.replace(out)
    return out


def _member_name(i: int, name: str) -> str:
    return f"runs/{i + 1:03d}-{re.sub(r'[^A-Za-z0-9._-]+', '-', name)[:60]}"


def read_bundle(path: str | Path, into: str | Path, limits: ZipLimits = ZipLimits()) -> Bundle:
    """Extract a session zip's runs into ``into`` (made; removed again if the zip is refused)."""
    into = Path(into)
    zf, members = open_zip(path, limits)
    try:
        with zf:
            manifest = _manifest(zf, members, path)
            into.mkdir(parents=True, exist_ok=False)
            runs = _extract(zf, members, manifest, into)
        for name, folder in runs.items():
            read_run_config(folder)
            read_metrics(folder)
    except TLCoreError:
        shutil.rmtree(into, ignore_errors=True)
        raise
    except Exception as e:  # zipfile's own errors on a damaged member (bad CRC, truncated data)
        shutil.rmtree(into, ignore_errors=True)
        raise TLCoreError(f"Refused {Path(path).name}: it is damaged ({type(e).__name__}).") from None
    return Bundle(runs, manifest.get("extra") or {})


def _manifest(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], path) -> dict:
    names = {m.filename for m in members}
    if MANIFEST not in names:
        raise TLCoreError(f"{Path(path).name} is not a saved session: it has no {MANIFEST} (Save session makes one).")
    try:
        manifest = json.loads(zf.read(MANIFEST))
        assert manifest.get("format") == FORMAT and isinstance(manifest.get("runs"), list)
        assert all(isinstance(r.get("name"), str) and isinstance(r.get("folder"), str) for r in manifest["runs"])
        assert isinstance(manifest.get("extra", {}), dict)
    except Exception:
        raise TLCoreError(f"{Path(path).name}: its {MANIFEST} is not a tlcore session ({FORMAT}).") from None
    if len(manifest["runs"]) > MAX_RUNS:
        raise TLCoreError(f"{Path(path).name} holds {len(manifest['runs'])} runs; a session opens at most {MAX_RUNS}.")
    return manifest


def _extract(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], manifest: dict, into: Path) -> dict[str, Path]:
    """Each run's files (one level under its folder; anything else in the zip is left unread)."""
    runs: dict[str, Path] = {}
    for i, entry in enumerate(manifest["runs"]):
        prefix = PurePosixPath(entry["folder"])
        files = [m for m in members if PurePosixPath(m.filename).parent == prefix]
        if not files:
            raise TLCoreError(f"The session's run {entry['name']!r} has no files in the zip.")
        folder = into / f"{i + 1:03d}"
        folder.mkdir()
        for m in files:
            with zf.open(m) as src, open(folder / PurePosixPath(m.filename).name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        runs[entry["name"]] = folder
    return runs
