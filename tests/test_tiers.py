"""The tiers hold what they promise: every test has exactly one; the unit tier imports every module
of tlcore; pytest.ini, the README and .ci/run say the same thing (see tests/conftest.py)."""
from __future__ import annotations

import ast
import configparser
import re
from functools import cache
from pathlib import Path

import pytest

import tlcore
from conftest import COLLECTED, LANE_MODULES, MODULES as TIER_MODULES, ROOT, TESTS, TIERS

HERE = Path(__file__).resolve().parent
PACKAGE = ROOT / "tlcore"


def _collected(request) -> list[pytest.Item]:
    """Every test this session collected (before -m deselected any), when that is the whole folder."""
    items = request.config.stash.get(COLLECTED, [])
    missing = {p.name for p in HERE.glob("test_*.py")} - {item.path.name for item in items}
    if missing:
        pytest.skip(f"needs the whole tests folder collected (as `python -m pytest -m unit` does); "
                    f"not collected: {', '.join(sorted(missing)[:3])}…")
    return items


def test_every_test_has_exactly_one_tier(request):
    for item in _collected(request):
        tiers = [m.name for m in item.iter_markers() if m.name in (*TIERS, "unit")]
        assert len(tiers) == 1, f"{item.nodeid}: {tiers}"


def test_the_tables_name_tests_that_exist(request):
    """A renamed test or module must not drop out of its tier silently."""
    names = {f"{item.path.name}::{getattr(item, 'originalname', item.name)}" for item in _collected(request)}
    assert not TESTS.keys() - names, f"conftest's TESTS names no collected test: {sorted(TESTS.keys() - names)}"
    assert all((HERE / f"{m}.py").is_file() for m in TIER_MODULES), sorted(TIER_MODULES)


def test_the_app_and_the_killed_processes_keep_one_lane(request):
    """Under ``-n 2 --dist loadgroup`` (tests/conftest.py) the modules of every e2e and kill test run
    in one worker: a new one of those, in a module not listed, would start a second server."""
    items = _collected(request)
    lanes = {item.path.stem for item in items if item.get_closest_marker("e2e") or item.get_closest_marker("kill")}
    assert lanes == LANE_MODULES, (f"e2e or kill tests outside the lane: {sorted(lanes - LANE_MODULES)}; "
                                   f"lane modules without any: {sorted(LANE_MODULES - lanes)}")


# -- what the unit tier imports -----------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


TLCORE = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _named(node: ast.AST, package: str) -> set[str]:
    """The tlcore modules one import statement (or ``runpy.run_module("tlcore…")``) loads."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
        names = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import module`
        if base == "tlcore":  # the public package loads each name's module on first use
            names += [tlcore._PUBLIC[a.name] for a in node.names if a.name in tlcore._PUBLIC]
    elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "run_module"
          and node.args and isinstance(node.args[0], ast.Constant)):
        names = [f"{node.args[0].value}.__main__"]
    else:
        return set()
    out = set()
    for name in names:
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}  # a module loads its packages first
    return out & TLCORE.keys()


def _walk(node: ast.AST, into_functions: bool):
    if not into_functions and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, into_functions)


def _imports(nodes, package: str = "", into_functions: bool = True) -> set[str]:
    return set().union(*(_named(n, package) for top in nodes for n in _walk(top, into_functions)))


@cache
def _on_import(module: str) -> frozenset[str]:
    """The tlcore modules a module's own import loads directly (a function's imports run only when
    it is called: not counted)."""
    path = TLCORE[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return frozenset(_imports(ast.parse(path.read_text()).body, package, into_functions=False))


def _loads(modules: set[str]) -> set[str]:
    """``modules`` and all that importing them loads."""
    seen, todo = set(modules), list(modules)
    while todo:
        for name in _on_import(todo.pop()) - seen:
            seen.add(name)
            todo.append(name)
    return seen


@cache
def _test_module(path: Path) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """A test module's imports: those its import runs, each top-level function's (tests, fixtures,
    helpers: its body's and those of the module's functions it calls), and the names it takes
    from conftest."""
    tree = ast.parse(path.read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    common = _imports([n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))])
    calls = {name: {n.id for n in ast.walk(f) if isinstance(n, ast.Name) and n.id in functions}
             for name, f in functions.items()}
    own = {name: set().union(*(_imports([functions[g]]) for g in _reached(name, calls))) for name in functions}
    from_conftest = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "conftest"
                     for a in n.names}
    return common, own, from_conftest


def _reached(name: str, calls: dict[str, set[str]]) -> set[str]:
    """``name`` and the functions it calls, and theirs."""
    seen, todo = {name}, [name]
    while todo:
        for g in calls[todo.pop()] - seen:
            seen.add(g)
            todo.append(g)
    return seen


def test_the_unit_tier_imports_every_module_of_tlcore(request):
    """Each module is loaded by some unit test: by its module's imports, its own body, the fixtures
    it uses, or what its module takes from conftest (and the functions each of those calls)."""
    loaded = set()
    conftest_common, conftest_own, _ = _test_module(HERE / "conftest.py")
    for item in _collected(request):
        if item.get_closest_marker("unit") is None:
            continue
        common, own, from_conftest = _test_module(item.path)
        loaded |= common | conftest_common | own.get(getattr(item, "originalname", item.name), set())
        for f in getattr(item, "fixturenames", ()):
            loaded |= own.get(f, conftest_own.get(f, set()))
        for name in from_conftest:
            loaded |= conftest_own.get(name, set())
    missing = sorted(TLCORE.keys() - _loads(loaded))
    assert not missing, f"no unit-tier test imports: {', '.join(missing)}"


def test_the_import_reader_follows_relative_imports_and_packages():
    """The check above reads imports as Python runs them: parents first, ``.x`` from its package,
    the public package's names from their modules, a function's imports only when it runs."""
    assert {"tlcore", "tlcore.cli", "tlcore.__main__"} <= _loads({"tlcore.__main__"})
    assert _imports(ast.parse("from tlcore.ui import train_tab").body) == {"tlcore", "tlcore.ui", "tlcore.ui.train_tab"}
    assert "tlcore.training.tutorial" in _imports(ast.parse("from tlcore import TransferLearningModel").body)
    assert _imports(ast.parse("def f():\n    import tlcore.cli").body, into_functions=False) == set()


# -- what the tiers are called, and what CI runs -------------------------------------------------------
def _readme_test_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Run the tests"):].split("\n## ", 1)[0]


def test_pytest_ini_and_the_readme_name_the_tiers():
    ini = configparser.ConfigParser()
    ini.read(ROOT / "pytest.ini")
    declared = {line.split(":")[0].strip() for line in ini["pytest"]["markers"].strip().splitlines()}
    assert declared == {*TIERS, "unit"}
    section = _readme_test_section()
    assert "python -m pytest -m unit" in section  # the inner loop
    for tier in declared:
        assert f"`{tier}`" in section, f"the README's test section does not name the {tier} tier"


def test_ci_runs_the_readmes_test_command():
    command = re.search(r"```bash\n(.*?)\n```", _readme_test_section(), re.S).group(1).strip()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == command, f".ci/run runs {ci!r}; the README says {command!r}"
