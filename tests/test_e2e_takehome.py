"""Take the model home, in the app: export downloads, and continue training (browser and API)."""
from __future__ import annotations

import json
import re
import zipfile

import torch
from safetensors.torch import load

from conftest import write_folder, zip_folder
from e2e_pages import api_client, opened, shot, train_and_open_evaluate

CURVE = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "best")


def _run_files(client, run: str) -> dict:
    """The run's zip (the Evaluate tab's download): its weights and its history."""
    outs = client.predict(run, api_name="/evaluate")
    with zipfile.ZipFile(outs[6]) as z:
        history = json.loads(z.read("metrics.json"))["history"]
        return {"weights": load(z.read("model.safetensors")), "curve": [tuple(h[k] for k in CURVE) for h in history],
                "card": z.read("MODEL_CARD.md").decode()}


def test_continue_training_through_the_api_equals_one_long_run(app):
    c = api_client(app.url)
    recipe = (32, 0.1, "sgd", "step", 1.0, 0.1, "on", 0, 0)  # the tutorial's StepLR: it does not depend on the length
    two = c.predict(2, *recipe, api_name="/train")[4]["value"]
    back = c.predict(two, 4, api_name="/continue_training")
    assert "**Completed 4 epochs**" in back[3], back[3]
    four = c.predict(4, *recipe, api_name="/train")[4]["value"]
    a, b = _run_files(c, back[4]["value"]), _run_files(c, four)
    assert len(a["curve"]) == 4 and a["curve"] == b["curve"]
    assert a["weights"].keys() == b["weights"].keys()
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    assert "## Intended use and limits" in a["card"]
    # A run that cannot continue says why and starts nothing.
    said = c.predict(two, 2, api_name="/continue_training")
    assert "Not started" in said[3] and "has trained 2 epochs already" in said[3], said[3]


def test_export_and_continue_in_a_browser(app, browser, tmp_path):
    page = opened(browser, app.url, height=1300)
    train_and_open_evaluate(page, 3)
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        page.locator(f"#export-{fmt}").click()
        page.locator("#export-files").get_by_text(re.compile(re.escape(suffix) + "$")).first.wait_for(timeout=60_000)
    assert "MODEL_CARD" in page.locator("#export-files").inner_text()  # the name and its suffix are shown apart
    with page.expect_download() as got:
        page.locator("#export-files a").first.click()
    assert got.value.suggested_filename.endswith((".pt", ".onnx", ".md"))
    # Another labelled set, uploaded: only a test/ folder, so every image counts.
    mine = zip_folder(write_folder(tmp_path / "mine", {f"test/{c}": 2 for c in range(10)}, size=8, rgb=False),
                      tmp_path / "mine.zip")
    page.locator("#evaluate-other input[type=file]").set_input_files(str(mine))
    page.get_by_text(re.compile(r"On mine: accuracy .* on 20 images")).wait_for(timeout=30_000)
    page.locator("#continue-epochs input").fill("6")
    shot(page, "t1-evaluate-export", tmp_path)
    page.locator("#continue-run").click()
    page.get_by_text(re.compile(r"Completed 6 epochs")).first.wait_for(timeout=60_000)
    assert "-to6" in page.locator("body").inner_text()
    # One curve: the six epochs, the first three from the run it continued.
    assert page.evaluate("() => Math.max(...[...document.querySelectorAll('.js-plotly-plot')].flatMap("
                         "p => (p.data || []).filter(t => t.name === 'validation').map(t => t.x.length)))") == 6
    shot(page, "t2-train-continued", tmp_path)
    page.close()
