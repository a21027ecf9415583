"""The app's modules keep their rooms (issue #23): tabs do not import each other (what two share
lives in a module both import), and only the jobs' runner takes and frees a session's job slot."""
from __future__ import annotations

import ast

from conftest import ROOT

UI = ROOT / "tlcore" / "ui"
TABS = sorted(p.stem for p in UI.glob("*_tab.py"))


def _ui_imports(path) -> set[str]:
    """The tlcore.ui modules ``path`` imports (``from . import x``, ``from .x import y``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.update([a.name for a in node.names] if node.module is None else [node.module.split(".")[0]])
    return out


def test_tabs_do_not_import_each_other():
    assert len(TABS) >= 6
    crossing = {tab: sorted(_ui_imports(UI / f"{tab}.py") & (set(TABS) - {tab})) for tab in TABS}
    assert {t: m for t, m in crossing.items() if m} == {}


def test_only_the_runner_takes_and_frees_a_job_slot():
    """No handler opens, starts or ends a job by hand (eight ``session.end()`` calls once did)."""
    slot_calls = {"open", "start", "end", "end_job"}
    found = {}
    for path in UI.glob("*.py"):
        if path.stem in ("jobs", "session", "slot"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in slot_calls:
                owner = ast.unparse(node.func.value)
                if owner.endswith("jobs") or owner == "session":
                    found.setdefault(path.stem, []).append(ast.unparse(node))
    assert found == {}
