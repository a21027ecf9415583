"""The engine's shape, held: no import cycles, gradio only in the UI, functions that fit on a
screen, and ``train()`` a few calls long. Read from the source (ast), so lazy imports count too."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "tlcore"
MODULES = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
           for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    """tlcore modules ``name`` imports anywhere in its file (a package's import pulls in its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            # A module importing its own package (or the package itself) is not an edge: Python
            # has already begun importing it.
            if t and not name.startswith(t + ".") and t != name:
                out.add(t)
    return out


def test_no_import_cycles():
    graph = {n: _imports(n, p) for n, p in MODULES.items()}
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_only_the_ui_imports_gradio():
    outside = [n for n, p in MODULES.items() if not n.startswith("tlcore.ui")
               and any(isinstance(x, (ast.Import, ast.ImportFrom)) and "gradio" in ast.unparse(x)
                       for x in ast.walk(ast.parse(p.read_text())))]
    assert outside == []


def _functions():
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{name}.{node.name}", node.end_lineno - node.lineno + 1


def test_every_function_fits_on_a_screen():
    long = {f: n for f, n in _functions() if n > 60}
    assert not long, f"functions over 60 lines: {long}"


def test_train_reads_as_set_up_fit_finish():
    lines = dict(_functions())["tlcore.training.train.train"]
    assert lines <= 30, f"train() is {lines} lines"


# The engine's face: what a front end may import (issue #23).
FACE = {"tlcore.api", "tlcore.config", "tlcore.events", "tlcore.errors"}


def test_front_ends_reach_the_engine_only_through_its_face():
    fronts = {n: p for n, p in MODULES.items() if n == "tlcore.cli" or n.startswith("tlcore.ui")}
    reached = {n: sorted(m for m in _imports(n, p) if not m.startswith("tlcore.ui") and m not in FACE | {"tlcore"})
               for n, p in fronts.items()}
    assert {n: m for n, m in reached.items() if m} == {}


def test_the_face_is_not_a_front_end_and_the_engine_never_imports_one():
    engine = {n: p for n, p in MODULES.items() if n not in ("tlcore.cli", "tlcore.__main__")
              and not n.startswith("tlcore.ui")}
    upward = {n: sorted(m for m in _imports(n, p) if m == "tlcore.cli" or m.startswith("tlcore.ui"))
              for n, p in engine.items()}
    assert {n: m for n, m in upward.items() if m} == {}


def test_at_most_twelve_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


def test_each_package_says_what_lives_in_it():
    """A newcomer finds a thing's room from the package's name and its one-line docstring."""
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.split()) >= 5, f"{init.relative_to(ROOT)} has no docstring saying what lives in it"


# The layers, bottom up: a module imports its own layer or lower ones, never a higher one.
LAYERS = [
    {"tlcore.config", "tlcore.errors", "tlcore.events", "tlcore.registry", "tlcore.paths",
     "tlcore.preprocess"},  # what every layer shares
    {"tlcore.data", "tlcore.models", "tlcore.device", "tlcore.distributed",
     "tlcore.runs.folder"},  # datasets, backbones, where they compute; the run format backbones load from
    {"tlcore.runs", "tlcore.insight", "tlcore.training"},  # one run: stored, judged, trained
    {"tlcore.studies"},  # workflows of many runs
    {"tlcore", "tlcore.api"},  # the public package and the face
    {"tlcore.cli", "tlcore.__main__", "tlcore.ui"},  # the front ends
]


def _layer(module: str) -> int:
    """The layer of the most specific entry naming ``module`` or a package above it."""
    named = [(len(p), i) for i, layer in enumerate(LAYERS) for p in layer
             if module == p or (p != "tlcore" and module.startswith(p + "."))]
    assert named, f"{module} is in no layer: add it to LAYERS"
    return max(named)[1]


def test_nothing_imports_upward():
    upward = {n: sorted(m for m in _imports(n, p) if _layer(m) > _layer(n)) for n, p in MODULES.items()}
    assert {n: m for n, m in upward.items() if m} == {}


def test_the_readme_lays_out_the_tree_as_it_is():
    """README's "How the code is laid out": one line per package, every package and top module named."""
    import re

    text = (ROOT / "README.md").read_text()
    section = text.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(?:tlcore/)?([a-z_]+(?:\.py|/))`", section))
    packages = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    top = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert packages | top <= named, f"not in the README's layout: {sorted(packages | top - named)}"
    assert named <= packages | top, f"in the README's layout, not in the tree: {sorted(named - packages - top)}"


def test_the_trainer_knows_hook_names_not_behaviours():
    """Behaviours are callbacks (tlcore.training.callbacks): the Trainer stays the size of its loop."""
    tree = ast.parse((PACKAGE / "training" / "loop.py").read_text())
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    methods = [n.name for n in ast.walk(trainer) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert len(methods) <= 15, f"Trainer has {len(methods)} methods: {methods}"
