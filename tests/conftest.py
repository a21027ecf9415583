"""Shared fixtures and helpers, and the tiers the tests run in.

Tiers (pytest.ini names the markers; every test gets exactly one, assigned here at collection):

    unit   in this process: no server, no browser, no subprocess, no MNIST-sized training
    e2e    the real app: a server and Chromium (Playwright), or gradio_client against it
    fuzz   Hypothesis (@given); HYPOTHESIS_PROFILE=ci or --hypothesis-profile=ci for the full count
    kill   processes killed or interrupted on purpose (SIGKILL, SIGINT)
    slow   what remains heavy: fresh interpreters, torchrun, MNIST, long trainings

``python -m pytest -m unit`` is the inner loop. A test is unit unless a rule below says
otherwise, and a unit test that starts a process anyway fails, naming it (``_in_process``).

Fixtures: the offline data folder, a private cache, digits, one quick config, the command line
in this process (``cli``) or as a user runs it (``cli_process``), and one app server and one
browser for the whole session (each test opens its own pages: a fresh Gradio session each).
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing.util
import os
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings
from PIL import Image, ImageDraw

# Two threads (or the cores there are), shared among pytest-xdist's workers when it runs some.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))

DATA_DIR = os.environ.get("TLCORE_DATA_DIR")
ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "assets" / "models" / "lenet5-mnist"

# Fuzzing: each fuzz test names its input count under "ci" (5,700 in all); "dev", the default,
# runs a twentieth of each (285). Both derandomized: the same inputs every run, no database.
settings.register_profile("ci", max_examples=100, derandomize=True, database=None)
settings.register_profile("dev", max_examples=5, derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def fuzz_examples(ci_count: int) -> int:
    """How many inputs a fuzz test that gets ``ci_count`` under the ci profile gets under the loaded one."""
    return max(1, ci_count * settings.default.max_examples // 100)


# -- tiers ------------------------------------------------------------------------------------------
TIERS = ("e2e", "kill", "fuzz", "slow")  # the first that applies wins; none applies: "unit"
# Whole modules of one kind.
MODULES = {
    "test_e2e": "e2e", "test_e2e_frictions": "e2e", "test_e2e_insight": "e2e", "test_e2e_restart": "e2e",
    "test_e2e_takehome": "e2e", "test_e2e_tune": "e2e", "test_fair_api": "e2e", "test_e2e_lesson": "e2e", "test_e2e_unlabelled": "e2e", "test_e2e_capture": "e2e", "test_e2e_lang": "e2e",
    "test_cli_interrupt": "kill",  # SIGINT to a real `python -m tlcore train`
    "test_distributed": "slow",  # torchrun: two fresh interpreters a test
    "test_loop_fixtures": "slow",  # pinned arithmetic needs a fresh interpreter (and one case is MNIST)
}
# Fixtures that make a test what they are, used directly or through another fixture.
FIXTURES = {"app": "e2e", "browser": "e2e", "chromium": "e2e", "cli_process": "slow",
            "shared_data": "slow"}  # MNIST / cifar10-mini from $TLCORE_DATA_DIR: MNIST-sized work
# Single tests of modules that mix kinds and do not mark their own (test ids without parameters):
# fresh interpreters, and in-process trainings that cost seconds each (the unit tier's budget is a minute).
TESTS = {
    "test_crash_safety.py::test_sigkill_while_saving_never_leaves_half_a_run": "kill",  # 20 forked savers SIGKILLed
    "test_tlm.py::test_the_readme_runs_the_tutorials_code_as_written": "slow",  # a fresh interpreter
    "test_train.py::test_events_fire_in_order_and_the_run_learns": "slow",
    "test_train.py::test_the_feature_cache_gives_the_slow_paths_result": "slow",
    "test_compare.py::test_the_curve_command_prints_its_results": "slow",
    "test_compare.py::test_transfer_vs_scratch_from_the_bundled_model_at_five_shots": "slow",
    "test_compare.py::test_a_stopped_curve_keeps_its_finished_points": "slow",
    "test_compare.py::test_the_shared_feature_probe_is_the_run_train_makes": "slow",
    "test_ui_frictions.py::test_a_stopped_run_is_evaluated_when_shown": "slow",
    "test_session.py::test_every_run_stays_listed_and_only_the_weights_are_capped": "slow",
    "test_fair.py::test_a_refused_gpu_call_goes_on_on_the_cpu": "slow",
    "test_compare_conclusions.py::test_a_curve_says_where_it_is_and_what_it_found": "slow",
    "test_compare_conclusions.py::test_a_frozen_body_is_said_plainly": "slow",
    "test_shift.py::test_the_gain_is_set_against_the_distance_and_charted": "slow",  # six trainings
    "test_budget.py::test_a_budgeted_curve_says_what_it_chose": "slow",  # timed steps and a training
    "test_budget.py::test_a_budgeted_transfer_vs_scratch_says_what_it_chose": "slow",  # and two
    # Each 1.4-3.9 s here (serial, 2-core VM), 32 s in all: a third of the unit tier's work.
    "test_lesson.py::test_the_lesson_command_prints_one_json_object": "slow",  # the whole lesson
    "test_export.py::test_the_cli_exports_with_a_card": "slow",
    "test_semi.py::test_the_selection_is_seeded_and_the_rows_carry_the_pseudo_label_fields": "slow",
    "test_semi.py::test_hidden_labels_never_reach_training": "slow",
    "test_semi.py::test_the_curve_command_draws_the_semi_supervised_line": "slow",
    "test_unlabelled.py::test_a_runs_hidden_labels_never_reach_its_training": "slow",
    "test_zerogpu.py::test_calls_stream_events_and_end_as_one_run": "slow",
    "test_ui_insight.py::test_the_feature_space_shows_both_bodies_and_their_numbers": "slow",  # t-SNE
    "test_featurespace.py::test_projections_are_2d_seeded_and_capped": "slow",  # t-SNE
    "test_budget.py::test_one_run_is_shrunk_as_a_study_is": "slow",
    "test_rank.py::test_a_source_that_knows_digits_outranks_random_weights_by_every_score": "slow",
    "test_train.py::test_a_budget_lets_several_epochs_into_one_call": "slow",
    "test_train.py::test_a_run_split_into_budgeted_calls_ends_exactly_as_one_run": "slow",
    "test_health.py::test_a_run_that_stays_at_chance_is_not_reported_as_a_plain_success": "slow",
}


def tier_of(item: pytest.Item) -> str:
    """The item's tier: its own marks, Hypothesis' @given, then TESTS, FIXTURES and MODULES; else unit."""
    said = {m.name for m in item.iter_markers() if m.name in TIERS}
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        said.add("fuzz")
    said.add(TESTS.get(f"{item.path.name}::{item.originalname}" if hasattr(item, "originalname") else "", ""))
    said.update(FIXTURES[f] for f in getattr(item, "fixturenames", ()) if f in FIXTURES)
    said.add(MODULES.get(item.path.stem, ""))
    return next((t for t in TIERS if t in said), "unit")


def pytest_collection_modifyitems(config, items):
    """Give every test its one tier marker (before ``-m`` selects). A ``slow`` that a module put on
    its end-to-end tests (slow once meant end-to-end) is dropped where a stronger tier applies, so
    that ``-m slow`` selects what is heavy and nothing of another tier."""
    tiers = [tier_of(item) for item in items]  # all first: dropping a module's mark must not move its other tests
    for item, tier in zip(items, tiers):
        if tier != "slow":
            for node in item.listchain():
                node.own_markers[:] = [m for m in node.own_markers if m.name != "slow"]
        if item.get_closest_marker(tier) is None:
            item.add_marker(getattr(pytest.mark, tier))
    config.stash[COLLECTED] = list(items)


# Two lanes under pytest-xdist (``-n 2 --dist loadgroup``, the README's command): the modules with
# the app's server and its browser, or with processes killed on purpose, run one after another in
# one worker, while the other worker (and this one, when it is done) takes the rest a test at a
# time. Two servers and two browsers on 2 cores measured no faster than one (e2e alone: 513 s
# against 546 s) and timed a test out. (xdist's own loadgroup reads its marks from
# ``item._nodeid``, which pytest 9.2 no longer uses: this scheduler groups by module instead.)
LANE_MODULES = {"test_bad_inputs", "test_cli_interrupt", "test_crash_safety", "test_leftovers", "test_fair_api",
                *(m for m in MODULES if m.startswith("test_e2e"))}


def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Lanes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:  # the biggest scope is handed out first
            return "app" if Path(nodeid.split("::")[0]).stem in LANE_MODULES else nodeid

    return Lanes(config, log)


COLLECTED = pytest.StashKey[list]()  # every collected test, before -m / -k deselect (see test_tiers)


# A unit test that starts a process fails: whatever its module or name, it was not in-process.
# Libraries asking the OS about the machine are not that (scikit-learn's t-SNE: loky runs lscpu).
_STARTED: list | None = None
_MACHINE_PROBES = {"lscpu", "uname", "nproc"}


def _record(what):
    if _STARTED is not None and not (isinstance(what, (list, tuple)) and what
                                     and Path(str(what[0])).name in _MACHINE_PROBES):
        _STARTED.append(what)


def _spy(real, describe):
    def spy(*args, **kwargs):
        _record(describe(*args, **kwargs))
        return real(*args, **kwargs)
    return spy


subprocess.Popen._execute_child = _spy(subprocess.Popen._execute_child, lambda self, args, *a, **k: args)
os.fork = _spy(os.fork, lambda: "os.fork()")
multiprocessing.util.spawnv_passfds = _spy(multiprocessing.util.spawnv_passfds, lambda path, args, fds: args)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _in_process(item, "setting up"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _in_process(item, "running"))


def _in_process(item, phase: str):
    global _STARTED
    if item.get_closest_marker("unit") is None:
        return (yield)
    _STARTED = []
    try:
        result = yield
    finally:
        started, _STARTED = _STARTED, None
    if started:
        pytest.fail(f"a unit test runs in this process, but {phase} it started {len(started)} process(es), "
                    f"first {started[0]!r}: use the `cli` fixture for the command line, or give the test its "
                    f"tier (a mark, or a rule in tests/conftest.py)", pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A browser test that fails says what its pages showed and what the app printed last: a CI
    log is all there is of a failure seen once (the pages close at teardown, the app at the end)."""
    report = yield
    if report.when == "call" and report.failed and "app" in item.funcargs:
        for k, page in enumerate(p for c in getattr(item.funcargs.get("browser"), "contexts", []) for p in c.pages):
            with contextlib.suppress(Exception):
                report.sections.append((f"page {k} showed", page.locator("body").inner_text(timeout=5_000)[-4000:]))
        with contextlib.suppress(OSError):
            report.sections.append(("the app printed (last lines)", item.funcargs["app"].log.read_text()[-4000:]))
    return report


# The unit tier is the inner loop: say which of its tests are heavy enough to belong elsewhere.
# Every run also ends with the seconds each tier took (setup, call and teardown), so that a CI
# log says where the suite's time goes.
UNIT_HEAVY_S = 3.0
_SECONDS: dict[str, dict[str, float]] = {}  # tier -> test id -> seconds


def pytest_runtest_logreport(report):
    tier = next((t for t in ("unit", *TIERS) if t in report.keywords), None)
    if tier is not None:
        tests = _SECONDS.setdefault(tier, {})
        tests[report.nodeid] = tests.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _SECONDS:
        return
    unit = _SECONDS.get("unit", {})
    if unit:
        heavy = sorted(((s, n) for n, s in unit.items() if s > UNIT_HEAVY_S), reverse=True)
        terminalreporter.write_line(f"unit tier: {len(unit)} tests, {sum(unit.values()):.0f} s in tests; over "
                                    f"{UNIT_HEAVY_S:.0f} s (setup + call + teardown) here: "
                                    + ("; ".join(f"{n} {s:.1f} s" for s, n in heavy[:8]) or "none"))
    terminalreporter.write_line("seconds per tier: " + ", ".join(
        f"{t} {sum(_SECONDS[t].values()):.0f} s ({len(_SECONDS[t])} tests)" for t in ("unit", *TIERS) if t in _SECONDS))


# -- shared fixtures --------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test writes caches to its own temp folder, never to the user's or the data folder."""
    monkeypatch.setenv("TLCORE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def shared_data() -> Path:
    """The offline datasets folder ($TLCORE_DATA_DIR); tests that need it skip without it."""
    if not DATA_DIR or not Path(DATA_DIR, "MNIST", "raw").is_dir():
        pytest.skip("TLCORE_DATA_DIR is not set to a folder with MNIST/raw (CI sets it to ../shared/datasets)")
    return Path(DATA_DIR)


@pytest.fixture
def cifar_zip(shared_data) -> Path:
    p = shared_data / "cifar10-mini.zip"
    if not p.is_file():
        pytest.skip(f"{p} is missing")
    return p


def png_bytes(arr: np.ndarray, fmt: str = "PNG", **save) -> bytes:
    """Encode an array; PIL picks the mode from its shape and dtype (uint16 -> I;16, 4 channels -> RGBA)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **save)
    return buf.getvalue()


def class_image(label: int, size: int = 16, rgb: bool = True, seed: int = 0) -> np.ndarray:
    """A distinguishable picture per class: a bright square whose position encodes the label."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 40, (size, size, 3) if rgb else (size, size), dtype=np.uint8)
    o = (label * 3) % (size - 4)
    a[o:o + 4, o:o + 4] = 250
    return a


def write_folder(root: Path, layout: dict[str, int], size: int = 16, rgb: bool = True) -> Path:
    """Write ``{"train/cat": 5, "test/cat": 2, ...}`` as PNG files under ``root``."""
    for i, (rel, n) in enumerate(sorted(layout.items())):
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        for j in range(n):
            (d / f"{j:03d}.png").write_bytes(png_bytes(class_image(i, size, rgb, seed=j)))
    return root


def zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder.parent).as_posix())
    return out


# -- zips, honest and hostile ---------------------------------------------------------------
PNG = png_bytes(class_image(0, 16))


def ok_members() -> list[tuple[str, bytes]]:
    return [(f"{c}/{i}.png", png_bytes(class_image(k, 16, seed=i))) for k, c in enumerate("ab") for i in range(3)]


def write_zip(path: Path, members, *, compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for m in members:
            if isinstance(m, zipfile.ZipInfo):
                z.writestr(m, m.comment)  # ZipInfo members carry their data in .comment
                m.comment = b""
            else:
                z.writestr(m[0], m[1])
    return path


def symlink_member(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.comment = target.encode()
    return info


def zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/0.png", PNG)
        z.writestr("b/0.png", PNG)
        z.writestr("a/huge.bmp", b"\0" * (50 * 1024**2))  # 50 MB of zeros deflates ~1000x
    return path


def encrypted_zip(path: Path) -> Path:
    write_zip(path, ok_members())
    data = bytearray(path.read_bytes())
    # Set the "encrypted" flag bit in the first central-directory header (offset 8 is flags).
    cd = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x05\x06"))
    first_cd = data.find(b"PK\x01\x02")
    data[first_cd + 8] |= 1
    assert cd >= first_cd
    path.write_bytes(bytes(data))
    return path


# -- drawings -------------------------------------------------------------------------------------
def digit_canvas(text: str, *, size=400, box=(100, 60, 300, 340), ink=0, paper=255, mode="L", width=22):
    """A handwritten-style digit drawn with strokes (thick lines) at ``box`` on a canvas."""
    img = Image.new(mode, (size, size), paper)
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    strokes = {
        "1": [[(x0 + w * 0.5, y0), (x0 + w * 0.5, y1)]],
        "7": [[(x0, y0), (x1, y0), (x0 + w * 0.35, y1)]],
        "0": [[(x0 + w * 0.5, y0), (x1, y0 + h * 0.3), (x1, y0 + h * 0.7), (x0 + w * 0.5, y1), (x0, y0 + h * 0.7),
               (x0, y0 + h * 0.3), (x0 + w * 0.5, y0)]],
        "4": [[(x0 + w * 0.7, y1), (x0 + w * 0.7, y0), (x0, y0 + h * 0.65), (x1, y0 + h * 0.65)]],
    }[text]
    for s in strokes:
        d.line(s, fill=ink, width=width, joint="curve")
    return img


# -- training -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, loaded once for the session (tests read it, never change it)."""
    from tlcore.data import load_dataset

    return load_dataset("digits")


def quick(**kw):
    """A small run on digits: LeNet-5, 2 epochs, batch 64, fp32 (no bf16 autocast, whatever the CPU
    offers); ``kw`` changes it."""
    from tlcore.config import RunConfig

    return RunConfig(**{"dataset": "digits", "backbone": "lenet5", "epochs": 2, "batch_size": 64, "precision": "fp32",
                        **kw})


# -- the command line -------------------------------------------------------------------------------------
@dataclass
class Ran:
    """What a command did: its exit code and what it printed (as subprocess.CompletedProcess names them)."""
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def cli_main(*args: str, env: dict | None = None) -> Ran:
    """``python -m tlcore ARGS`` in this process: ``tlcore.cli.main``, from the repository's folder,
    with ``env`` added to the environment, stdout and stderr captured, SystemExit's code kept."""
    from tlcore.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.chdir(ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse's --help and its one-line errors
                code = e.code
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Ran(list(args), code, out.getvalue(), err.getvalue())


run = cli_main  # the name modules used when it was a subprocess: now the same command, in this process


@pytest.fixture
def cli():
    """The command line in this process (see ``cli_main``): ``cli("train", "--epochs", "2").stdout``."""
    return cli_main


@pytest.fixture
def cli_process():
    """``python -m tlcore ARGS`` as a user runs it, a fresh interpreter (about 2 s to import): for what
    only a process shows. Its users are in the slow tier (FIXTURES)."""
    def run_process(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tlcore", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                              capture_output=True, text=True, timeout=300)
    return run_process


# -- the app, end to end ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The real app (``python app.py``) for the whole session, with its own TMPDIR (``app.tmp``).
    Tests share it as users share a Space: each works in its own session (a page, a client)."""
    from e2e_server import AppServer

    root = tmp_path_factory.mktemp("app")
    (root / "tmp").mkdir()
    server = AppServer(root, env={"TMPDIR": str(root / "tmp")})
    server.tmp = root / "tmp"
    yield server
    server.close()


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session (Debian's; Playwright's own download is never used)."""
    from e2e_server import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # A fake camera (Chromium's moving test pattern), granted without asking: the Capture tab's webcam.
        b = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream",
                                                              "--use-fake-ui-for-media-stream"])
        yield b
        b.close()


@pytest.fixture
def browser(chromium):
    """The session's Chromium. ``browser.new_page()`` opens a page in a new context, so a new Gradio
    session; whatever the test left open is closed after it (closing a tab ends its session)."""
    yield chromium
    for context in chromium.contexts:
        context.close()


def run_async(coro):
    """``asyncio.run(coro)`` in a thread of its own: the session's shared browser (Playwright's
    sync API) keeps an event loop running in the main thread, where asyncio.run refuses to start."""
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
