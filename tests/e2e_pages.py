"""What a user does on the app's pages (Playwright): the steps the end-to-end tests share, and the
whole flow that ``benchmarks/app_timings.py`` also times.

Screenshots go to $TLCORE_SCREENSHOTS when it is set (else to the test's temporary folder).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

SHOTS = Path(os.environ["TLCORE_SCREENSHOTS"]) if os.environ.get("TLCORE_SCREENSHOTS") else None
GUESS = "document.querySelector('#draw-label [data-testid=label-output-value]')"


def shot(page, name: str, tmp: Path):
    folder = SHOTS or tmp
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def opened(browser, url: str, height: int = 1100):
    """A new page (of a browser context when ``browser`` is one) (a new Gradio session) on the app, on its Data tab once the offline default dataset
    is shown (the app opens on the Lesson)."""
    if hasattr(browser, "new_context"):  # a browser: the page in a context of its own
        page = browser.new_page(viewport={"width": 1400, "height": height})
    else:  # a context: a tab of that browser (it shares the local storage, so the kept session)
        page = browser.new_page()
        page.set_viewport_size({"width": 1400, "height": height})
    page.goto(url)
    page.get_by_role("tab", name="Data", exact=True).click()
    page.get_by_text("1,295").first.wait_for(timeout=30_000)
    return page


def whole_flow(page, tmp: Path) -> None:
    """A first visit, tab by tab: the data, the transfer the Model tab opens on, six epochs with
    live charts, the evaluation and a clicked cell's images, a "1" drawn and read."""
    # Data: the offline default is loaded at once.
    page.get_by_text("1,295").first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=20_000)
    shot(page, "1-data", tmp)
    # Model: a transfer from the first screen: the bundled MNIST LeNet-5, body frozen, a new head.
    page.get_by_role("tab", name="Model", exact=True).click()
    page.get_by_text("850 of 61,706 parameters train").wait_for(timeout=20_000)
    assert "bundled run: lenet5-mnist" in page.get_by_label("Pretrained weights").input_value()
    shot(page, "2-model", tmp)
    # Train: start, and watch the charts grow.
    page.get_by_role("tab", name="Train", exact=True).click()
    device = page.get_by_text(re.compile(r"Device: (CPU|CUDA|Apple)"))
    device.wait_for()
    assert re.search(r"CPU, \d+ threads|CUDA: ", device.inner_text())
    fill_when_settled(page.get_by_label("Epochs"), "6")
    page.get_by_role("button", name="Start training").click()
    # Progress shows (on a fast CPU the six epochs take a second or two: no one epoch's text lasts).
    page.get_by_text(re.compile(r"Epoch [1-6]/6|Completed 6 epochs")).first.wait_for(timeout=60_000)
    plots = page.locator("#component-0 ~ * .js-plotly-plot, .js-plotly-plot")
    early_points = page.locator(".js-plotly-plot .scatterlayer .trace").count()
    shot(page, "3-train-running", tmp)
    page.get_by_text(re.compile(r"Completed 6 epochs")).first.wait_for(timeout=90_000)
    late_points = page.locator(".js-plotly-plot .scatterlayer .trace").count()
    assert plots.count() >= 3 and late_points >= early_points >= 1
    shot(page, "4-train-done", tmp)
    # Evaluate: the new run is selected; confusion matrix and ROC are drawn.
    page.get_by_role("tab", name="Evaluate", exact=True).click()
    page.get_by_text(re.compile(r"Test accuracy")).wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 1
    assert page.get_by_text(re.compile(r"macro \(AUC")).count() >= 1
    shot(page, "5-evaluate", tmp)
    # Choosing a cell shows its images: the "3 predicted as 3" cell is never empty.
    grid = page.get_by_role("grid", name="Confusion matrix: click a count to see those images")
    # Row 1 is the header and column 1 the class names: class 3's diagonal cell is (5, 5).
    grid.locator('[role=row][aria-rowindex="5"] [aria-colindex="5"]').click()
    page.get_by_text(re.compile(r"correct: true 3, predicted 3")).wait_for(timeout=20_000)
    page.locator("#eval-gallery").get_by_text(re.compile(r"^predicted 3 \(\d+%\)$")).first.wait_for(timeout=10_000)
    shot(page, "6-evaluate-cell", tmp)
    # Draw: strokes with the mouse, and a label appears.
    page.get_by_role("tab", name="Draw", exact=True).click()
    canvas = page.locator("canvas").first
    canvas.wait_for(timeout=20_000)
    # Ready to draw without picking a tool first: the brush is selected when the tab opens.
    page.get_by_text("select the draw tool to start").wait_for(state="hidden", timeout=15_000)
    box = canvas.bounding_box()
    cx, top = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(cx, top)
    page.mouse.down()
    for i in (10, 20):  # a "1": one long vertical stroke (the brush joins the points: see draw_stroke)
        page.mouse.move(cx, top + i * box["height"] * 0.03)
    page.mouse.up()
    label = page.locator("#draw-label")
    page.wait_for_function("() => /\\d+%/.test(document.querySelector('#draw-label').innerText)", timeout=20_000)
    shot(page, "7-draw", tmp)
    assert "Draw a digit" not in label.inner_text() and re.search(r"^\s*1\s*$", label.inner_text(), re.M)


def fill_when_settled(box, value: str):
    """The app suggests settings once data and model are loaded (and again after a model change):
    fill once that has landed."""
    for _ in range(10):
        box.fill(value)
        time.sleep(1.0)
        if box.input_value() == value:
            return
    raise AssertionError(f"could not set {value}")


def train_and_open_evaluate(page, epochs: int, test: str = r"Test accuracy"):
    """Train the page's data and model for ``epochs``, then open its evaluation (``test``: its summary)."""
    page.get_by_role("tab", name="Train", exact=True).click()
    # Not a plain fill: the settings suggested for a model just chosen can land after it and put the
    # suggested epochs back (seen once in CI: "Completed 10 epochs" where 3 were typed).
    fill_when_settled(page.get_by_label("Epochs"), str(epochs))
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(rf"Completed {epochs} epochs")).first.wait_for(timeout=90_000)
    page.get_by_role("tab", name="Evaluate", exact=True).click()
    page.get_by_text(re.compile(test)).wait_for(timeout=30_000)


def draw_stroke(page, points):
    """Drag the mouse through ``points`` given as fractions of the canvas, twice a segment: the brush
    joins them with straight lines (8 moves a segment drew the same pixels), and each move is a frame
    of the sketchpad's WebGL drawn in software here (~0.3 s of a core)."""
    box = page.locator("#draw-pad canvas").first.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
        page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2)
        page.mouse.move(x1, y1)
    page.mouse.up()


def draw_tab_with_label(browser, url: str, label: str):
    """A new page on the Draw tab, ready to draw, with ``label`` picked for the drawings to add."""
    page = opened(browser, url, height=1200)
    page.get_by_role("tab", name="Draw", exact=True).click()
    page.get_by_text("select the draw tool to start").wait_for(state="hidden", timeout=15_000)
    page.locator("#teach-label input").click()
    page.get_by_role("option", name=label, exact=True).click()
    return page


def wait_for_guess(page):
    page.wait_for_function(f"() => {GUESS} && /\\d+%/.test(document.querySelector('#draw-label').innerText)",
                           timeout=20_000)


def from_the_bundled_model(browser, url: str, preset: str, counts: str):
    """A page whose Model tab has chosen the bundled MNIST LeNet-5 with ``preset``, on the Train tab."""
    page = opened(browser, url)
    page.get_by_role("tab", name="Model", exact=True).click()
    page.get_by_text("850 of 61,706 parameters train").wait_for(timeout=20_000)  # the default: a linear probe
    page.get_by_label("Pretrained weights").click()
    page.get_by_role("option", name=re.compile("lenet5-mnist")).click()
    page.get_by_label("Freezing preset").click()
    page.get_by_role("option", name=preset).click()
    page.get_by_text(counts).wait_for(timeout=20_000)
    page.get_by_role("tab", name="Train", exact=True).click()
    return page


def api_client(url: str, *, digits_and_lenet5: bool = True):
    """A gradio_client session on the app; by default with digits loaded and LeNet-5 from scratch chosen."""
    from gradio_client import Client

    c = Client(url, verbose=False)
    if digits_and_lenet5:
        c.predict("digits", None, 0, 0.1, 0, api_name="/load_dataset")
        c.predict("lenet5", "none", "", False, api_name="/choose_model")
    return c
