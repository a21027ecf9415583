"""The real app, driven as a user would: a real server, real Chromium (Playwright), gradio_client.

The server and the browser are the session's (tests/conftest.py); each test opens its own pages
or clients, a Gradio session each. How fast it serves, stops and runs the whole flow is measured
by benchmarks/app_timings.py, not asserted here."""
from __future__ import annotations

import glob
import json
import re
import threading
import time
import urllib.request
from pathlib import Path

from e2e_pages import (api_client, draw_stroke, draw_tab_with_label, from_the_bundled_model, opened, shot,
                       wait_for_guess, whole_flow)
from e2e_server import http_call


def test_it_serves_the_studio(app):
    """The page answers, and its configuration is the studio's (how soon it answers after starting:
    benchmarks/app_timings.py)."""
    with urllib.request.urlopen(app.url, timeout=30) as r:
        assert r.status == 200 and "<html" in r.read().decode()
    with urllib.request.urlopen(app.url + "config", timeout=30) as r:
        assert json.load(r)["title"] == "Transfer Learning Studio"


def test_the_whole_flow_in_a_browser(app, browser, tmp_path):
    whole_flow(opened(browser, app.url, height=1000), tmp_path)


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
    for n in range(1, 3):  # two "4"s (the count's words for one and for more), each a flagged 1 with a crossbar
        x = 0.4 + 0.05 * n
        draw_stroke(page, [(x - 0.12, 0.3), (x, 0.2), (x, 0.8)])
        draw_stroke(page, [(x - 0.1, 0.5), (x + 0.1, 0.5)])
        wait_for_guess(page)
        page.locator("#teach-add").click()
        page.locator("#teach-count").get_by_text(f"{n} drawing{'s' * (n != 1)} (").wait_for(timeout=20_000)
        # The canvas was cleared for the next drawing, and so was the guess.
        page.wait_for_function("() => !/\\d+%/.test(document.querySelector('#draw-label').innerText)",
                               timeout=20_000)
    page.locator("#teach-go").click()
    status = page.locator("#teach-status")
    status.get_by_text(re.compile(r"Taught: now \d+% of your drawings right")).wait_for(timeout=90_000)
    shot(page, "8-teach", tmp_path)
    assert re.search(r"Saved as run .*taught", status.inner_text())
    assert "taught" in page.locator("#draw-model input").input_value()


def test_a_closed_tabs_session_waits_for_its_browser_and_no_other(app, browser):
    """Closing the tab no longer ends a browser's session (issue #25): its folder (runs, downloads,
    drawings) stays, and a tab the same browser opens again finds the drawings; another browser
    starts empty. (Its end after the keeping time: tests/test_keep.py.) The app has its own TMPDIR
    (``app.tmp``), so other processes' session folders are not counted."""
    pattern = str(app.tmp / "tlcore-session-*")
    before = set(glob.glob(pattern))
    context = browser.new_context()
    page = draw_tab_with_label(context, app.url, "7")
    draw_stroke(page, [(0.3, 0.25), (0.7, 0.25), (0.45, 0.8)])
    wait_for_guess(page)
    page.locator("#teach-add").click()
    page.locator("#teach-count").get_by_text("1 drawing (").wait_for(timeout=20_000)
    mine = set(glob.glob(pattern)) - before
    assert len(mine) == 1 and list(Path(next(iter(mine))).rglob("my-drawings.zip"))
    page.close()
    time.sleep(2)  # the unload lands
    assert Path(next(iter(mine))).exists(), "the closed tab's session was ended: its browser lost its work"
    again = opened(context, app.url)
    again.get_by_role("tab", name="Draw", exact=True).click()
    again.locator("#teach-count").get_by_text("1 drawing (").wait_for(timeout=30_000)
    other = draw_tab_with_label(browser, app.url, "7")
    other.locator("#teach-count").get_by_text("No drawings yet").wait_for(timeout=20_000)


def test_api_and_two_sessions_are_isolated(app, tmp_path):
    from gradio_client import handle_file

    a, b = (api_client(app.url, digits_and_lenet5=False) for _ in range(2))
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


def test_stop_ends_a_run_and_keeps_the_model(app):
    """Stop during the second epoch: the run ends, stopped, with its best epoch kept as a model
    (how soon: benchmarks/app_timings.py, goal under 3 s)."""
    c = api_client(app.url)
    job = c.submit(200, 32, 0.1, "sgd", "onecycle", 1.0, 0.1, "on", 0, 0, api_name="/train")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:  # wait until the second epoch has begun (one epoch is kept)
        outs = job.outputs()
        if outs and re.search(r"Epoch ([2-9]|\d\d+)/200", outs[-1][0]):
            break
        time.sleep(0.2)
    assert c.predict(api_name="/stop").startswith("Stopping")
    final = job.result(timeout=60)
    assert "**Stopped " in final[3] and "the best so far" in final[3] and final[4]["value"]


def test_a_bad_upload_warns_and_keeps_the_previous_dataset(app, tmp_path):
    from gradio_client import handle_file

    c = api_client(app.url, digits_and_lenet5=False)
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
    page.get_by_role("tab", name="Evaluate", exact=True).click()
    source = page.get_by_text(re.compile(r"before fine-tuning"))
    source.wait_for(timeout=30_000)
    assert re.search(r"Source task \(lenet5-mnist.*\d+\.\d% before fine-tuning → \d+\.\d% after", source.inner_text())
    shot(page, "10-evaluate-forgetting", tmp_path)
    page.close()


def traces(page, chart: str, n: int) -> None:
    """Wait for ``chart`` to draw ``n`` traces: Plotly draws after the event's text has landed
    (a loaded machine showed the text with the chart still empty)."""
    page.wait_for_function(f"() => document.querySelectorAll('{chart} .scatterlayer .trace').length === {n}",
                           timeout=20_000)


def test_compare_transfer_with_scratch_then_overlay_and_delete_runs(app, browser, tmp_path):
    """The Compare tab's default: the bundled MNIST model against scratch on digits, both curves in
    one chart and the answer in words; then the run table, an overlay of two runs, a delete."""
    page = opened(browser, app.url)
    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_role("button", name=re.compile("Does transfer help here")).click()  # the Train tab's link
    page.locator("#duel-go").click()
    summary = page.locator("#duel-summary")
    summary.get_by_text(re.compile("Transfer helps here|does not help|About the same")).wait_for(timeout=120_000)
    said = summary.inner_text()
    assert re.search(r"from lenet5-mnist, .+ trains; from scratch, every layer trains\): \d+\.\d% vs \d+\.\d% on the "
                     r"test split", said), said
    assert "Why: " in said and "After 1 epoch: " in said, said
    assert re.search(r"How far: this data lies \d+\.\dx as far from the source's data \('mnist'\)", said), said
    traces(page, "#duel-chart", 2)  # from the source, from scratch
    shot(page, "11-compare-duel", tmp_path)
    table = page.locator("#runs-table")
    page.wait_for_function("() => document.querySelector('#runs-table').innerText.includes('-scratch-digits')",
                           timeout=20_000)
    assert re.search(r"\d+-transfer-digits-lenet5\s+digits · from MNIST · full[^\n]*\s+digits\s+lenet5\s+full",
                     table.inner_text())
    overlay = page.locator("#overlay-runs")
    for label in overlay.get_by_role("checkbox").all()[:2]:
        label.check()
    page.get_by_text("2 runs: validation accuracy after each epoch.").wait_for(timeout=20_000)
    traces(page, "#overlay-chart", 2)
    shot(page, "12-compare-overlay", tmp_path)
    page.get_by_label("Delete a run of this session").click()
    page.get_by_role("option", name=re.compile(r"\d+-scratch-digits-lenet5")).click()
    page.locator("#delete-go").click()
    page.get_by_text(re.compile(r"Deleted run \d+-scratch-digits-lenet5")).wait_for(timeout=20_000)
    assert "-scratch-digits-lenet5" not in table.inner_text() and "-transfer-digits-lenet5" in table.inner_text()
    # The data-efficiency curve, small: points stream in, lines with their spread (scratch and the probe;
    # fine-tune, the slowest, 40% of the curve's time, unticked), and the probe plus the unlabelled images
    # (the rest of the training split, labels hidden).
    page.get_by_label("Samples per class", exact=True).fill("1, 5")
    page.get_by_label("Seeds", exact=True).fill("2")
    page.locator("#curve-strategies").get_by_label("fine-tune", exact=True).uncheck()
    page.locator("#curve-strategies").get_by_label("+ the unlabelled images").check()
    page.locator("#curve-go").click()
    status = page.locator("#curve-status")
    status.get_by_text(re.compile("shared one feature pass")).wait_for(timeout=120_000)
    traces(page, "#curve-chart", 9)  # per strategy: a line and its band's 2 edges
    assert re.search(r"The unlabelled images (added [+-]\d+\.\d points|made no clear difference|did not help) at 1 per "
                     r"class \(.*[\d,]+ unlabelled images labelled by label spreading.*\d+% .*right", status.inner_text())
    rows = page.locator("#curve-chart").inner_text() + page.get_by_label("Mean over seeds").inner_text()
    assert "linear-probe + the unlabelled images" in rows and "fine-tune" not in rows
    shot(page, "13-compare-curve", tmp_path)
    page.close()
