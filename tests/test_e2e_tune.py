"""Look inside and tune, in a real browser: the learning-rate finder fills the rate, and gradual
unfreezing shows on the Model tab's schedule and as marks on the live charts."""
from __future__ import annotations

import re
import time

from e2e_pages import fill_when_settled, from_the_bundled_model, shot


def test_find_the_rate_use_it_and_unfreeze_gradually(app, browser, tmp_path):
    page = from_the_bundled_model(browser, app.url, "full", "61,706 of 61,706 parameters train")
    fill_when_settled(page.get_by_label("Epochs"), "4")
    page.get_by_text("Gradual unfreezing", exact=True).click()
    page.get_by_label(re.compile("Unfreeze one more group every")).fill("1")
    page.get_by_label(re.compile("Per-group rate decay")).fill("0.5")
    page.get_by_role("button", name="Find learning rate").click()
    note = page.locator("#lr-note")
    note.get_by_text(re.compile(r"Suggested learning rate: [\d.e-]+")).wait_for(timeout=90_000)
    found = re.search(r"Suggested learning rate: ([\d.e-]+)", note.inner_text()).group(1)
    assert page.locator(".js-plotly-plot .xaxislayer-above").count() >= 1
    shot(page, "tune-1-lr-finder", tmp_path)
    page.get_by_role("button", name=f"Use {found}").click()
    lr = page.get_by_label("Learning rate (head)")
    for _ in range(20):
        if lr.input_value() and float(lr.input_value()) == float(found):
            break
        time.sleep(0.5)
    assert float(lr.input_value()) == float(found)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Completed 4 epochs")).first.wait_for(timeout=120_000)
    # Three unfreeze points (fc2, fc1, conv2 join at epochs 2-4), marked on both charts.
    assert page.locator(".js-plotly-plot .shapelayer path").count() >= 6
    shot(page, "tune-2-unfreeze-marks", tmp_path)
    page.get_by_role("tab", name="Model", exact=True).click()
    page.wait_for_function("() => document.querySelector('#unfreeze-schedule').innerText"
                           ".includes('head, fc2, fc1, conv2')", timeout=20_000)
    shot(page, "tune-3-model-schedule", tmp_path)
    page.close()
