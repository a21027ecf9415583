"""Images nobody labelled, in a real browser: an upload with an unlabelled/ folder, loose images added
on the Data tab, and a run that labels them (the Train tab's *Images nobody labelled*).

Screenshots (TLCORE_SCREENSHOTS=folder): the Data tab with its pool, the Train tab after the run.
"""
from __future__ import annotations

import io
import re
import zipfile

import numpy as np
from PIL import Image

from e2e_pages import opened, shot

LABELLED, UNLABELLED = 3, 40  # per class


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((a * 255 / 16).astype(np.uint8)).resize((28, 28)).save(buf, "PNG")
    return buf.getvalue()


def _digits_with_a_pool(tmp_path):
    """Three digit classes, 3 labelled training images each (one of which validates), 20 test images each, and 40 of each in
    unlabelled/ (their labels thrown away: the file names say nothing)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    path = tmp_path / "three-digits.zip"
    with zipfile.ZipFile(path, "w") as z:
        k = 0
        for c in range(3):
            rows = np.flatnonzero(d.target == c)
            for j, i in enumerate(rows[:LABELLED]):
                z.writestr(f"train/digit-{c}/{j}.png", _png(d.images[i]))
            for j, i in enumerate(rows[LABELLED:LABELLED + 20]):
                z.writestr(f"test/digit-{c}/{j}.png", _png(d.images[i]))
            for i in rows[LABELLED + 20:LABELLED + 20 + UNLABELLED]:
                z.writestr(f"unlabelled/{k:04d}.png", _png(d.images[i]))
                k += 1
    return path, [_png(d.images[i]) for i in np.flatnonzero(d.target == 1)[-2:]]


def test_a_teacher_labels_three_per_class_and_the_rest_are_learnt_from(app, browser, tmp_path):
    page = opened(browser, app.url)
    zipped, loose = _digits_with_a_pool(tmp_path)
    page.locator("#data-upload input[type=file]").set_input_files(str(zipped))
    summary = page.get_by_text(re.compile(r"images without labels"))
    summary.wait_for(timeout=30_000)
    text = page.locator("body").inner_text().replace("**", "")
    assert "3 classes" in text and f"{3 * UNLABELLED} images without labels" in text, text
    # Two more digits and a broken file, added without labels: counted, the broken one skipped and said.
    files = []
    for i, blob in enumerate([*loose, b"\x89PNG\r\n not really"]):
        files.append(tmp_path / f"loose{i}.png")
        files[-1].write_bytes(blob)
    page.locator("#data-unlabelled input[type=file]").set_input_files([str(f) for f in files])
    page.get_by_text(re.compile(rf"{3 * UNLABELLED + 2} images without labels")).wait_for(timeout=30_000)
    assert "1 not a readable image" in page.locator("body").inner_text()
    shot(page, "u1-data-unlabelled", tmp_path)
    # The bundled MNIST model as a linear probe (the page's model), told to label the pool.
    page.get_by_role("tab", name="Train", exact=True).click()
    page.locator("#train-unlabelled").get_by_text("Images nobody labelled").click()
    page.get_by_label("Label the unlabelled images with").click()
    page.get_by_role("option", name="label-spreading").click()
    page.get_by_role("button", name="Start training").click()
    note = page.get_by_text(re.compile(r"Semi-supervised \(label-spreading\): \d+ of 122 unlabelled images were "
                                       r"labelled confidently enough to train on, beside 6 labelled ones"))
    note.wait_for(timeout=120_000)
    assert "how many are right is not measured" in note.inner_text()
    assert re.search(r"test accuracy \d+\.\d+%", page.locator("body").inner_text())
    shot(page, "u2-train-semi", tmp_path)
    page.close()
