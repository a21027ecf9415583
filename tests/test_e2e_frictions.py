"""#14's frictions in a real browser: what a teacher trying the app met, each held here.

Screenshots (TLCORE_SCREENSHOTS=folder) of Train, Evaluate with 2 and 10 classes, and Draw.
"""
from __future__ import annotations

import re
import zipfile

import pytest

from conftest import write_folder, zip_folder
from e2e_pages import draw_stroke, opened, shot, train_and_open_evaluate


def _toasts(page, text: str) -> int:
    return page.locator("[data-testid=toast-body]").filter(has_text=text).count()


def _upload(page, path):
    page.locator("#data-upload input[type=file]").set_input_files(str(path))


def _digit_zip(tmp_path, classes=(0, 1)):
    """Real handwritten digits (scikit-learn's) as a zip of PNGs with train/ and test/ folders."""
    import io

    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path / "zero-one.zip"
    with zipfile.ZipFile(path, "w") as z:
        for c in classes:
            for j, i in enumerate(np.flatnonzero(d.target == c)[:80]):
                img = Image.fromarray((d.images[i] * 255 / 16).astype(np.uint8)).resize((28, 28))
                buf = io.BytesIO()
                img.save(buf, "PNG")
                z.writestr(f"{'test' if j % 4 == 0 else 'train'}/digit-{c}/{j:03d}.png", buf.getvalue())
    return path


def test_uploads_load_at_once_and_errors_keep_their_words(app, browser, tmp_path):
    """Items 6, 7, 9, 18: load on upload, '<class>/<image>' kept, val/ said to be the test split,
    one warning per bad file."""
    page = opened(browser, app.url)
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as z:
        z.writestr("a.png", b"x")
        z.writestr("b.png", b"y")
    _upload(page, flat)
    page.get_by_text(re.compile(r"Not loaded:.*Expected <class>/<image>")).first.wait_for(timeout=20_000)
    assert _toasts(page, "<class>/<image>") == 1
    page.close()
    # A .png where a zip belongs: said once, and the digits stay.
    page = opened(browser, app.url)
    png = tmp_path / "digit.png"
    png.write_bytes(zipfile.Path(flat).joinpath("a.png").read_bytes())
    _upload(page, png)
    page.wait_for_timeout(3_000)
    toasts = page.locator("[data-testid=toast-body]").all_inner_texts()
    assert len(toasts) == 1, toasts
    assert "1,295" in page.locator("body").inner_text()
    page.close()
    # A photo set with train/ and val/: loaded without pressing Load, the split explained.
    page = opened(browser, app.url)
    bees = zip_folder(write_folder(tmp_path / "bees", {"train/ants": 12, "train/bees": 12, "val/ants": 5,
                                                        "val/bees": 5}, size=96), tmp_path / "bees.zip")
    _upload(page, bees)
    page.get_by_text(re.compile(r"Your val/ folder is the test split")).wait_for(timeout=30_000)
    assert "test 10" in page.locator("body").inner_text().replace("**", "")
    shot(page, "f1-data-2-classes", tmp_path)
    # #26 item 1: photos get a pretrained photo model suggested; one click chooses it on the Model tab.
    page.locator("#model-hint").get_by_text(re.compile(r"These are colour photos \(96×96 px")).wait_for(timeout=30_000)
    page.locator("#use-suggested-model").click()
    page.locator("#use-suggested-model").wait_for(state="hidden", timeout=30_000)
    page.get_by_role("tab", name="Model", exact=True).click()
    page.get_by_text(re.compile(r"2,562 of 3,[0-9,]+ parameters train")).first.wait_for(timeout=60_000)
    assert [page.get_by_label(label).input_value() for label in ("Backbone", "Pretrained weights", "Freezing preset")] \
        == ["efficientnet_lite0", "imagenet", "linear-probe"]
    assert page.locator("[data-testid=toast-body]").count() == 0, page.locator("[data-testid=toast-body]").all_inner_texts()
    page.close()


def test_train_tab_frictions(app, browser, tmp_path):
    """Items 1, 14, 15, 16: an exploding run fails with advice on a log axis; the learning rate
    steps by 0.001; the body multiplier is greyed for a frozen body; the ending said once; a
    model change clears the charts."""
    page = opened(browser, app.url)
    page.get_by_role("tab", name="Train", exact=True).click()
    # #26 item 2: Start and Stop are in view without scrolling on a 1280x720 screen.
    page.set_viewport_size({"width": 1280, "height": 720})
    for button in ("#train-start", "#train-stop"):
        box = page.locator(button).bounding_box()
        assert box["y"] + box["height"] <= 720, (button, box)
    page.set_viewport_size({"width": 1400, "height": 1100})
    body_mult = page.get_by_label("Body learning-rate multiplier")
    assert body_mult.is_disabled()  # the first model is a linear probe: its body is frozen
    lr = page.get_by_label("Learning rate (head)")
    lr.fill("0.01")
    lr.press("ArrowUp")
    assert float(lr.input_value()) == pytest.approx(0.011)
    lr.fill("")  # what a box typed "abc" into sends: nothing
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Learning rate \(lr\) must be a number > 0 and <= 10, got nothing")).first \
        .wait_for(timeout=20_000)
    # From scratch at lr 5: the loss explodes (finite, ~1e27), the run fails and says what to do.
    page.get_by_role("tab", name="Model", exact=True).click()
    page.get_by_label("Pretrained weights").click()
    page.get_by_role("option", name="none", exact=True).click()
    page.get_by_text("61,706 of 61,706 parameters train").wait_for(timeout=20_000)
    page.get_by_role("tab", name="Train", exact=True).click()
    page.wait_for_function("() => !document.querySelector('input[aria-label=\"Body learning-rate multiplier\"]')"
                           "?.disabled", timeout=20_000)
    for label, value in (("Learning rate (head)", "5"), ("Epochs", "3"), ("Optimizer", None)):
        if value:
            page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Start training").click()
    # Which of the two a CPU reaches depends on its arithmetic (a Xeon: ~1e27; an EPYC: NaN at step 40).
    failed = page.get_by_text(re.compile(r"The training loss (exploded to|became NaN or infinite) .* Try 0\.5")).first
    failed.wait_for(timeout=90_000)
    shot(page, "f2-train-exploded", tmp_path)
    if "exploded" in failed.inner_text():
        # Plotly draws after the status text lands: wait for the log axis rather than read it at once.
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')]"
                               ".some(p => p.layout && p.layout.yaxis && p.layout.yaxis.type === 'log')",
                               timeout=20_000)
    assert "CHART" not in page.locator("#chart-note").inner_text() and \
        "label smoothing" in page.locator("#chart-note").inner_text()
    # A healthy run: its ending is said once (it was under the bar and in the status).
    page.get_by_label("Learning rate (head)").fill("0.15")
    page.get_by_label("Epochs").fill("6")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Completed 6 epochs")).first.wait_for(timeout=90_000)
    assert len(re.findall(r"Completed 6 epochs", page.locator("body").inner_text())) == 1
    shot(page, "f3-train-done", tmp_path)
    # Another model: the charts of a run on the old one go.
    page.get_by_role("tab", name="Model", exact=True).click()
    page.get_by_label("Freezing preset").click()
    page.get_by_role("option", name="linear-probe").click()
    page.get_by_text("850 of 61,706 parameters train").wait_for(timeout=20_000)
    page.get_by_role("tab", name="Train", exact=True).click()
    page.wait_for_function("() => !document.body.innerText.includes('Completed 6 epochs')", timeout=20_000)
    page.close()


def test_evaluate_and_draw_frictions(app, browser, tmp_path):
    """Items 3, 8, 10, 12, 13: the heatmap is clickable, row shares keep the gallery, a stopped run
    is evaluated; the empty canvas claims nothing and clearing it clears the map."""
    page = opened(browser, app.url, height=1400)
    page.get_by_role("tab", name="Model", exact=True).click()  # from scratch: slow enough to stop mid-run
    page.get_by_label("Pretrained weights").click()
    page.get_by_role("option", name="none", exact=True).click()
    page.get_by_text("61,706 of 61,706 parameters train").wait_for(timeout=20_000)
    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_label("Epochs").fill("200")  # far more than it runs before Stop, however fast the machine
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Epoch \d+/200")).first.wait_for(timeout=60_000)
    page.wait_for_timeout(1_500)
    page.get_by_role("button", name="Start training").click()  # a second Start: said in a toast, nothing starts
    page.locator("[data-testid=toast-body]").filter(has_text="A training is already running").first \
        .wait_for(timeout=10_000)
    page.get_by_role("button", name="Stop").click()
    # (The stopped run is still scored on the test split and saved: 30 s was once too short under load.)
    page.get_by_text(re.compile(r"Stopped at epoch")).first.wait_for(timeout=90_000)
    page.get_by_role("tab", name="Evaluate", exact=True).click()
    page.get_by_text(re.compile(r"Test accuracy .* on 359 images")).wait_for(timeout=30_000)
    assert "of a run that stopped" in page.locator("body").inner_text()
    # Click the heatmap's own cell for true 3, predicted 3.
    page.locator("#cm-chart .heatmaplayer").wait_for(timeout=20_000)
    box = page.locator("#cm-chart .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 3.5 / 10, box["y"] + box["height"] * 3.5 / 10)
    page.get_by_text(re.compile(r"correct: true 3, predicted 3")).wait_for(timeout=20_000)
    page.get_by_text("row-normalized").click()
    page.wait_for_timeout(2_000)
    assert "correct: true 3, predicted 3" in page.locator("body").inner_text()  # the gallery stayed
    shot(page, "f4-evaluate-10-classes", tmp_path)
    # Draw: nothing claimed before drawing; Show where it looked, then Clear: the map goes too.
    page.get_by_role("tab", name="Draw", exact=True).click()
    page.get_by_text("select the draw tool to start").wait_for(state="hidden", timeout=15_000)
    assert not re.search(r"\d+%", page.locator("#draw-label").inner_text())
    assert "This model knows 10 classes" in page.locator("#draw-knows").inner_text()
    draw_stroke(page, [(0.5, 0.2), (0.5, 0.8)])
    page.wait_for_function("() => /\\d+%/.test(document.querySelector('#draw-label').innerText)", timeout=20_000)
    page.get_by_role("button", name="Show where it looked").click()
    page.locator("#draw-heat img").wait_for(timeout=20_000)
    shot(page, "f5-draw", tmp_path)
    page.locator('#draw-pad button[aria-label="Clear canvas"]').click()
    page.locator("#draw-heat img").wait_for(state="detached", timeout=20_000)
    assert not re.search(r"\d+%", page.locator("#draw-label").inner_text())
    # #26 item 3: the sketchpad's own Clear keeps the brush, so the next stroke draws (and is read).
    page.get_by_text("select the draw tool to start").wait_for(state="hidden", timeout=15_000)
    draw_stroke(page, [(0.3, 0.25), (0.7, 0.25), (0.45, 0.8)])
    page.wait_for_function("() => /\\d+%/.test(document.querySelector('#draw-label').innerText)", timeout=20_000)
    page.close()


def test_evaluate_two_classes(app, browser, tmp_path):
    """Item 11, 12 at the small end: two classes, the ROC legend readable, captions whole."""
    page = opened(browser, app.url, height=1400)
    _upload(page, _digit_zip(tmp_path))
    page.get_by_text(re.compile(r"2 classes")).first.wait_for(timeout=30_000)
    train_and_open_evaluate(page, 5, r"Test accuracy .* on 40 images")
    # The legend readable; where both classes are within a hair of AUC 1 (#26 item 6) it keeps the
    # averages only, and the summary says what the chart cannot show.
    body = page.locator("body").inner_text()
    names = ["micro (AUC"] if "every class's AUC is between" in body else ["digit-0 (AUC", "micro (AUC"]
    for name in names:
        legend = page.locator("text.legendtext").filter(has_text=name)
        assert legend.count() >= 1 and legend.first.bounding_box()["width"] > 40, name
    # #26 item 5: the gallery keeps six columns whatever its count (Gradio spread two images over the
    # whole row, cropped, captions gone): a cell's images, then their grid.
    page.locator("#cm-chart .heatmaplayer").wait_for(timeout=20_000)
    box = page.locator("#cm-chart .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.get_by_text(re.compile(r"true digit-0, predicted digit-0")).first.wait_for(timeout=20_000)
    page.locator("#eval-gallery .grid-container").wait_for(timeout=20_000)
    tracks = page.evaluate("() => getComputedStyle(document.querySelector('#eval-gallery .grid-container'))"
                           ".gridTemplateColumns.split(' ').length")
    assert tracks == 6, tracks
    shot(page, "f6-evaluate-2-classes", tmp_path)
    page.close()
