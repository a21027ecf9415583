"""The real app, driven as a user would: a real server, real Chromium (Playwright), gradio_client."""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from e2e_server import CHROMIUM, CHROMIUM_ARGS, AppServer, http_call

pytestmark = pytest.mark.slow
SHOTS = Path(os.environ.get("TLCORE_SCREENSHOTS", "")) if os.environ.get("TLCORE_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    server = AppServer(tmp_path_factory.mktemp("app"))
    yield server
    server.close()


def test_it_serves_quickly(app):
    assert app.ready_after < 15, f"served after {app.ready_after:.1f} s"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def shot(page, name: str, tmp: Path):
    folder = SHOTS or tmp
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_the_whole_flow_in_a_browser(app, browser, tmp_path):
    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url)
    # Data: the offline default is loaded at once.
    page.get_by_text("1,295").first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=20_000)
    shot(page, "1-data", tmp_path)
    # Model: a transfer from the first screen: the bundled MNIST LeNet-5, body frozen, a new head.
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("850 of 61,706 parameters train").wait_for(timeout=20_000)
    assert "bundled run: lenet5-mnist" in page.get_by_label("Pretrained weights").input_value()
    shot(page, "2-model", tmp_path)
    # Train: start, and watch the charts grow.
    page.get_by_role("tab", name="Train").click()
    device = page.get_by_text(re.compile(r"Device: (CPU|CUDA|Apple)"))
    device.wait_for()
    assert re.search(r"CPU, \d+ threads|CUDA: ", device.inner_text())
    epochs = page.get_by_label("Epochs")
    for _ in range(10):  # the app suggests settings once data and model are loaded: let that land first
        epochs.fill("6")
        time.sleep(1.0)
        if epochs.input_value() == "6":
            break
    page.get_by_role("button", name="Start training").click()
    # Progress shows (on a fast CPU the six epochs take a second or two: no one epoch's text lasts).
    page.get_by_text(re.compile(r"Epoch [1-6]/6|Completed 6 epochs")).first.wait_for(timeout=60_000)
    plots = page.locator("#component-0 ~ * .js-plotly-plot, .js-plotly-plot")
    early_points = page.locator(".js-plotly-plot .scatterlayer .trace").count()
    shot(page, "3-train-running", tmp_path)
    page.get_by_text(re.compile(r"Completed 6 epochs")).first.wait_for(timeout=90_000)
    late_points = page.locator(".js-plotly-plot .scatterlayer .trace").count()
    assert plots.count() >= 3 and late_points >= early_points >= 1
    shot(page, "4-train-done", tmp_path)
    # Evaluate: the new run is selected; confusion matrix and ROC are drawn.
    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_text(re.compile(r"Test accuracy")).wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 1
    assert page.get_by_text(re.compile(r"macro \(AUC")).count() >= 1
    shot(page, "5-evaluate", tmp_path)
    # Choosing a cell shows its images: the "3 predicted as 3" cell is never empty.
    grid = page.get_by_role("grid", name="Confusion matrix: click a count to see those images")
    # Row 1 is the header and column 1 the class names: class 3's diagonal cell is (5, 5).
    grid.locator('[role=row][aria-rowindex="5"] [aria-colindex="5"]').click()
    page.get_by_text(re.compile(r"correct: true 3, predicted 3")).wait_for(timeout=20_000)
    page.locator("#eval-gallery").get_by_text(re.compile(r"^3 \d+%$")).first.wait_for(timeout=10_000)
    shot(page, "6-evaluate-cell", tmp_path)
    # Draw: strokes with the mouse, and a label appears.
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("canvas").first
    canvas.wait_for(timeout=20_000)
    # Ready to draw without picking a tool first: the brush is selected when the tab opens.
    page.get_by_text("select the draw tool to start").wait_for(state="hidden", timeout=15_000)
    box = canvas.bounding_box()
    cx, top = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(cx, top)
    page.mouse.down()
    for i in range(1, 21):  # a "1": one long vertical stroke
        page.mouse.move(cx, top + i * box["height"] * 0.03)
    page.mouse.up()
    label = page.locator("#draw-label")
    page.wait_for_function("() => /\\d+%/.test(document.querySelector('#draw-label').innerText)", timeout=20_000)
    shot(page, "7-draw", tmp_path)
    assert "Draw a digit" not in label.inner_text() and re.search(r"^\s*1\s*$", label.inner_text(), re.M)
    assert time.monotonic() - t0 < 120, "the whole flow must take under 2 minutes on a CPU"


def train_and_open_evaluate(page, epochs: int, test: str = r"Test accuracy"):
    """Train the page's data and model for ``epochs``, then open its evaluation (``test``: its summary)."""
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Epochs").fill(str(epochs))
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(rf"Completed {epochs} epochs")).first.wait_for(timeout=90_000)
    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_text(re.compile(test)).wait_for(timeout=30_000)


def draw_stroke(page, points):
    """Drag the mouse through ``points`` given as fractions of the canvas."""
    box = page.locator("#draw-pad canvas").first.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        for i in range(1, 9):
            page.mouse.move(x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * i / 8)
    page.mouse.up()


GUESS = "document.querySelector('#draw-label [data-testid=label-output-value]')"


def draw_tab_with_label(browser, url: str, label: str):
    """A new page on the Draw tab, ready to draw, with ``label`` picked for the drawings to add."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(url)
    page.get_by_text("1,295").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Draw").click()
    page.get_by_text("select the draw tool to start").wait_for(state="hidden", timeout=15_000)
    page.locator("#teach-label input").click()
    page.get_by_role("option", name=label, exact=True).click()
    return page


def wait_for_guess(page):
    page.wait_for_function(f"() => {GUESS} && /\\d+%/.test(document.querySelector('#draw-label').innerText)",
                           timeout=20_000)


def from_the_bundled_model(browser, url: str, preset: str, counts: str):
    """A page whose Model tab has chosen the bundled MNIST LeNet-5 with ``preset``, on the Train tab."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url)
    page.get_by_text("1,295").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("850 of 61,706 parameters train").wait_for(timeout=20_000)  # the default: a linear probe
    page.get_by_label("Pretrained weights").click()
    page.get_by_role("option", name=re.compile("lenet5-mnist")).click()
    page.get_by_label("Freezing preset").click()
    page.get_by_role("option", name=preset).click()
    page.get_by_text(counts).wait_for(timeout=20_000)
    page.get_by_role("tab", name="Train").click()
    return page


def test_changing_the_model_suggests_its_settings(app, browser):
    """A linear probe from the bundled MNIST model: the Train tab's settings follow the model."""
    from tlcore.training.suggest import suggested

    page = from_the_bundled_model(browser, app.url, "linear-probe", "850 of 61,706 parameters train")
    groups = ["conv1", "conv2", "fc1", "fc2", "head"]
    want = suggested("lenet5", "run", groups[:-1], groups, 1295)
    optimizer = page.get_by_label("Optimizer")
    for _ in range(20):
        if optimizer.input_value() == want["optimizer"]:
            break
        time.sleep(0.5)
    got = {k: page.get_by_label(label).input_value() for k, label in
           (("optimizer", "Optimizer"), ("epochs", "Epochs"), ("lr", "Learning rate (head)"))}
    assert got == {"optimizer": want["optimizer"], "epochs": str(want["epochs"]), "lr": str(want["lr"])}
    assert want["optimizer"] != suggested("lenet5", "none", [], groups, 1295)["optimizer"]  # it did change
    page.close()


def test_teach_it_in_a_browser(app, browser, tmp_path):
    """Draw, label, add (the canvas clears), teach: a new model is chosen and the status says how it did."""
    page = draw_tab_with_label(browser, app.url, "4")
    for n in range(1, 4):  # three "4"s written as a flagged 1 with a crossbar
        x = 0.4 + 0.05 * n
        draw_stroke(page, [(x - 0.12, 0.3), (x, 0.2), (x, 0.8)])
        draw_stroke(page, [(x - 0.1, 0.5), (x + 0.1, 0.5)])
        wait_for_guess(page)
        page.locator("#teach-add").click()
        page.locator("#teach-count").get_by_text(f"{n} drawings").wait_for(timeout=20_000)
        # The canvas was cleared for the next drawing, and so was the guess.
        page.wait_for_function("() => !/\\d+%/.test(document.querySelector('#draw-label').innerText)",
                               timeout=20_000)
    page.locator("#teach-go").click()
    status = page.locator("#teach-status")
    status.get_by_text(re.compile(r"Taught: now \d+% of your drawings right")).wait_for(timeout=90_000)
    shot(page, "8-teach", tmp_path)
    assert re.search(r"Saved as run .*taught", status.inner_text())
    assert "taught" in page.locator("#draw-model input").input_value()


def test_a_closed_sessions_folder_is_removed(browser, tmp_path):
    """Gradio deletes a closed tab's state only an hour later; the app's unload ends the session
    as the tab closes: its folder (runs, downloads and drawings) is removed. The app gets its own
    TMPDIR, so other processes' session folders are not counted."""
    import glob

    (tmp_path / "tmp").mkdir()
    pattern = str(tmp_path / "tmp" / "tlcore-session-*")
    before = set(glob.glob(pattern))
    server = AppServer(tmp_path, env={"TMPDIR": str(tmp_path / "tmp")})
    try:
        page = draw_tab_with_label(browser, server.url, "7")
        draw_stroke(page, [(0.3, 0.25), (0.7, 0.25), (0.45, 0.8)])
        wait_for_guess(page)
        page.locator("#teach-add").click()
        page.locator("#teach-count").get_by_text("1 drawings").wait_for(timeout=20_000)
        mine = set(glob.glob(pattern)) - before
        assert len(mine) == 1 and list(Path(next(iter(mine))).rglob("my-drawings.zip"))
        page.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Path(next(iter(mine))).exists():
            time.sleep(0.5)
        assert not Path(next(iter(mine))).exists(), "the closed session's folder is still there"
    finally:
        server.close()


def test_api_and_two_sessions_are_isolated(app, tmp_path):
    from gradio_client import Client, handle_file

    a, b = Client(app.url, verbose=False), Client(app.url, verbose=False)
    names = set(a.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/load_dataset", "/choose_model", "/train", "/stop", "/evaluate", "/predict_digit"} <= names
    for c in (a, b):
        c.predict("digits", None, 0, 0.1, 0, api_name="/load_dataset")
    a.predict("lenet5", "none", "", False, api_name="/choose_model")
    counts = b.predict("lenet5", "none", "conv1", False, api_name="/choose_model")[1]
    assert "61,550 of 61,706 parameters train" in counts  # conv1's 156 are frozen
    results = {}

    def run(name, client, seed):
        job = client.submit(2, 64, 0.1, "sgd", "onecycle", 1.0, 0.1, "off", 0, seed, api_name="/train")
        results[name] = job.result()

    threads = [threading.Thread(target=run, args=("a", a, 1)), threading.Thread(target=run, args=("b", b, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    run_a, run_b = results["a"][4]["value"], results["b"][4]["value"]
    # Each session sees exactly its own single run.
    assert [c[0] for c in results["a"][4]["choices"]] == [run_a]
    assert [c[0] for c in results["b"][4]["choices"]] == [run_b]
    # A session cannot open another's run by name.
    ev = b.predict(run_b, "counts", api_name="/evaluate")
    assert "Test accuracy" in ev[0]
    foreign = a.predict(run_b, "counts", api_name="/evaluate") if run_a != run_b else None
    if foreign is not None:
        assert "Test accuracy" not in foreign[0]
    # predict_digit through the running app.
    from PIL import Image, ImageDraw

    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(100, 30), (100, 170)], fill=0, width=14)
    path = tmp_path / "one.png"
    img.save(path)
    out = a.predict(handle_file(str(path)), api_name="/predict_digit")
    assert out["label"] == "1"
    # The same over plain HTTP (the "Use via API" recipe), which the latency benchmark measures.
    event, data = http_call(app.url, "predict_digit", path.read_bytes())
    assert event == "complete" and data[0]["label"] == "1"


def test_stop_ends_a_run_within_seconds_and_keeps_the_model(app):
    from gradio_client import Client

    c = Client(app.url, verbose=False)
    c.predict("digits", None, 0, 0.1, 0, api_name="/load_dataset")
    c.predict("lenet5", "none", "", False, api_name="/choose_model")
    job = c.submit(200, 32, 0.1, "sgd", "onecycle", 1.0, 0.1, "on", 0, 0, api_name="/train")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:  # wait until the second epoch has begun (one epoch is kept)
        outs = job.outputs()
        if outs and re.search(r"Epoch ([2-9]|\d\d+)/200", outs[-1][0]):
            break
        time.sleep(0.2)
    t_stop = time.monotonic()
    assert c.predict(api_name="/stop").startswith("Stopping")
    final = job.result(timeout=30)
    took = time.monotonic() - t_stop
    assert took < 3, f"stop took {took:.1f} s"
    assert "**Stopped.**" in final[3] and "the best so far" in final[3] and final[4]["value"]


def test_a_bad_upload_warns_and_keeps_the_previous_dataset(app, tmp_path):
    from gradio_client import Client, handle_file

    c = Client(app.url, verbose=False)
    assert "### digits" in c.predict("digits", None, 0, 0.1, 0, api_name="/load_dataset")[0]
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    summary = c.predict("upload a zip…", handle_file(str(bad)), 0, 0.1, 0, api_name="/load_dataset")[0]
    assert "### digits" in summary and "1,295" in summary  # still the digits
    # And the app still answers.
    assert c.predict("lenet5", "none", "", False, api_name="/choose_model")[1].startswith("**61,706")


def test_fine_tuning_from_the_bundled_model_shows_what_it_forgot(app, browser, tmp_path):
    """LwF from the Train tab's More settings; Evaluate shows the source task before and after
    beside the target accuracy."""
    page = from_the_bundled_model(browser, app.url, "full", "61,706 of 61,706 parameters train")
    body_mult = page.get_by_label("Body learning-rate multiplier")
    for _ in range(20):  # the suggestion for a pretrained body being fine-tuned lands first
        if body_mult.input_value() == "0.1":
            break
        time.sleep(0.5)
    for label, value in (("Epochs", "3"), ("Learning rate (head)", "0.1"), ("Body learning-rate multiplier", "1")):
        page.get_by_label(label).fill(value)
    page.get_by_text("Not forgetting the source").click()
    page.get_by_label("LwF weight (0 = off)").fill("1")
    shot(page, "9-train-lwf", tmp_path)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Completed 3 epochs")).first.wait_for(timeout=90_000)
    assert re.search(r"source task \d+\.\d% → \d+\.\d%", page.locator("body").inner_text())
    page.get_by_role("tab", name="Evaluate").click()
    source = page.get_by_text(re.compile(r"before fine-tuning"))
    source.wait_for(timeout=30_000)
    assert re.search(r"Source task \(lenet5-mnist.*\d+\.\d% before fine-tuning → \d+\.\d% after", source.inner_text())
    shot(page, "10-evaluate-forgetting", tmp_path)
    page.close()


def test_compare_transfer_with_scratch_then_overlay_and_delete_runs(app, browser, tmp_path):
    """The Compare tab's default: the bundled MNIST model against scratch on digits, both curves in
    one chart and the answer in words; then the run table, an overlay of two runs, a delete."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(app.url)
    page.get_by_text("1,295").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("button", name=re.compile("Does transfer help here")).click()  # the Train tab's link
    page.locator("#duel-go").click()
    summary = page.locator("#duel-summary")
    summary.get_by_text(re.compile("Transfer helps here|does not help|About the same")).wait_for(timeout=120_000)
    assert re.search(r"from lenet5-mnist: \d+\.\d% on the test split; from scratch: \d+\.\d%", summary.inner_text())
    assert page.locator("#duel-chart .scatterlayer .trace").count() == 2  # from the source, from scratch
    shot(page, "11-compare-duel", tmp_path)
    table = page.locator("#runs-table")
    page.wait_for_function("() => document.querySelector('#runs-table').innerText.includes('-scratch-digits')",
                           timeout=20_000)
    assert re.search(r"\d+-transfer-digits-lenet5\s+digits\s+lenet5\s+run:lenet5-mnist", table.inner_text())
    overlay = page.locator("#overlay-runs")
    for label in overlay.get_by_role("checkbox").all()[:2]:
        label.check()
    page.get_by_text("2 runs: validation accuracy after each epoch.").wait_for(timeout=20_000)
    assert page.locator("#overlay-chart .scatterlayer .trace").count() == 2
    shot(page, "12-compare-overlay", tmp_path)
    page.get_by_label("Delete a run of this session").click()
    page.get_by_role("option", name=re.compile(r"\d+-scratch-digits-lenet5")).click()
    page.locator("#delete-go").click()
    page.get_by_text(re.compile(r"Deleted run \d+-scratch-digits-lenet5")).wait_for(timeout=20_000)
    assert "-scratch-digits-lenet5" not in table.inner_text() and "-transfer-digits-lenet5" in table.inner_text()
    # The data-efficiency curve, small: points stream in, three lines with their spread.
    page.get_by_label("Samples per class", exact=True).fill("1, 5")
    page.get_by_label("Seeds", exact=True).fill("2")
    page.locator("#curve-go").click()
    page.locator("#curve-status").get_by_text(re.compile("shared one feature pass")).wait_for(timeout=120_000)
    assert page.locator("#curve-chart .scatterlayer .trace").count() == 9  # per strategy: a line and its band's 2 edges
    shot(page, "13-compare-curve", tmp_path)
    page.close()
