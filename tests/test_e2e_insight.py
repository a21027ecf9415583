"""The Evaluate tab's look inside, in a real browser: the feature space of digits fine-tuned from the
bundled MNIST LeNet-5, before and after, a clicked point's image, and Grad-CAM over the gallery.
Screenshots (TLCORE_SCREENSHOTS=folder): i1-feature-space(-tsne), i2-gradcam-gallery."""
from __future__ import annotations

import re

from e2e_pages import from_the_bundled_model, shot, train_and_open_evaluate


def test_feature_space_and_grad_cam_in_a_browser(app, browser, tmp_path):
    page = from_the_bundled_model(browser, app.url, "full", "61,706 of 61,706 parameters train")
    page.set_viewport_size({"width": 1400, "height": 1000})
    train_and_open_evaluate(page, 3)
    page.locator("#fs-show").click()
    summary = page.locator("#fs-summary")
    summary.get_by_text(re.compile(r"5-NN accuracy")).wait_for(timeout=60_000)
    numbers = [float(n) for n in re.findall(r"(\d+\.\d)%", summary.inner_text())[:2]]
    assert len(numbers) == 2 and numbers[0] < numbers[1], summary.inner_text()  # before < after
    chart = page.locator("#fs-chart .js-plotly-plot")
    chart.wait_for(timeout=30_000)
    assert page.locator("#fs-chart .subplot").count() == 2  # both panels drawn
    assert page.locator("#fs-chart .legend .traces").count() == 10  # one legend entry per class
    assert "before: lenet5-mnist" in page.locator("#fs-chart").inner_text()
    # A point, clicked, shows its image.
    page.locator("#fs-chart .scatterlayer .point").first.click(force=True)
    page.locator("#fs-point-caption").get_by_text(re.compile(r"Test image #\d+: class")).wait_for(timeout=20_000)
    page.locator("#fs-chart").scroll_into_view_if_needed()
    shot(page, "i1-feature-space", tmp_path)
    page.locator("#fs-projection").get_by_text("t-SNE").click()
    page.locator("#fs-chart").get_by_text("t-SNE to 2-D").wait_for(timeout=60_000)
    shot(page, "i1-feature-space-tsne", tmp_path)
    # Grad-CAM over the gallery: on 8x8 digits a map would paint the background, so it says why not
    # (#26 item 5; maps over 32 px images: tests/test_ui_insight.py).
    page.locator("#gradcam-toggle input").check()
    page.locator("[data-testid=toast-body]").filter(has_text="These images are 8×8 pixels").first \
        .wait_for(timeout=30_000)
    assert "Grad-CAM" not in page.locator("#eval-gallery").inner_text()
    shot(page, "i2-gradcam-too-small", tmp_path)
    page.close()
