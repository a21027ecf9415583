"""Issue #25 in a real browser: the Lesson tab runs the engine a step at a time and says what it
measured; a class's work survives a reload; Save session / Open session carry it to another browser.

Screenshots (at 1280x720, the step's button in view) go to $TLCORE_SCREENSHOTS when set."""
from __future__ import annotations

import re
import time

from e2e_pages import shot, train_and_open_evaluate

VIEW = {"width": 1280, "height": 720}


def _page(browser, url: str):
    """A page of a new browser context (its own local storage: another browser, as the app sees it)."""
    page = browser.new_context(viewport=VIEW).new_page()
    page.goto(url)
    page.locator("#lesson-go-1").wait_for(timeout=30_000)
    return page


def _in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and 0 <= box["y"] and box["y"] + box["height"] <= VIEW["height"]


def test_the_lesson_opens_first_runs_its_steps_and_a_reload_keeps_them(app, browser, tmp_path):
    page = _page(browser, app.url)
    assert _in_view(page, "#lesson-go-1"), "the first step's button is below the fold at 1280x720"
    page.locator("#lesson-go-1").click()
    said = page.locator("#lesson-said-1")
    said.get_by_text(re.compile(r"It reads \d+\.\d% of the \d+ MNIST test digits")).wait_for(timeout=60_000)
    shot(page, "lesson-1", tmp_path)
    page.locator("#lesson-next-1").click()
    page.locator("#lesson-go-2").wait_for(timeout=10_000)
    assert _in_view(page, "#lesson-go-2")
    page.locator("#lesson-go-2").click()
    said2 = page.locator("#lesson-said-2")
    said2.get_by_text(re.compile(r"after one epoch the model from MNIST reads \d+\.\d%")).wait_for(timeout=180_000)
    page.locator("#lesson-show-2 .js-plotly-plot").wait_for(timeout=20_000)
    shot(page, "lesson-2", tmp_path)
    # The numbers in the sentence are the run's: they change with it, and the chart shows the same run.
    first = said2.inner_text()
    page.reload()
    page.locator("#lesson-go-1").wait_for(timeout=30_000)
    page.locator("#lesson-said-1").get_by_text(re.compile(r"It reads \d+\.\d%")).wait_for(timeout=30_000)
    page.locator("#lesson-next-1").click()
    page.locator("#lesson-said-2").get_by_text(re.compile("after one epoch")).wait_for(timeout=30_000)
    assert page.locator("#lesson-said-2").inner_text() == first, "the reloaded page shows another lesson's numbers"


def _run_names(page, pick: str | None = None) -> list[str]:
    """The Evaluate tab's runs; with ``pick``, that one is chosen and its evaluation awaited."""
    page.get_by_role("tab", name="Evaluate", exact=True).click()
    page.get_by_label("Run", exact=True).click()
    time.sleep(0.5)  # the list opens
    names = [t.split("\n")[-1].strip() for t in page.get_by_role("option").all_inner_texts()]  # without "✓"
    if pick is None:
        page.keyboard.press("Escape")
        return names
    page.get_by_role("option", name=pick).click()
    page.get_by_text(re.compile(r"Test accuracy")).first.wait_for(timeout=60_000)
    return names


def test_a_run_survives_a_reload_and_a_saved_session_opens_in_another_browser(app, browser, tmp_path):
    page = _page(browser, app.url)
    page.get_by_role("tab", name="Data", exact=True).click()
    page.get_by_text("1,295").first.wait_for(timeout=30_000)
    train_and_open_evaluate(page, 2)
    names = _run_names(page)
    assert len(names) == 1 and re.fullmatch(r"\d+-digits-lenet5", names[0]), names
    page.reload()
    page.locator("#lesson-go-1").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # the first paint's events (the kept session's lists) land
    assert _run_names(page) == names, "the run was lost by a reload"
    _run_names(page, pick=names[0])
    shot(page, "reloaded-evaluate", tmp_path)
    # Save session, then open it in another browser (a new context: its own storage, its own session).
    page.locator("#session-save").click()
    with page.expect_download() as dl:
        page.locator("#session-file a").first.click(timeout=30_000)
    zipped = tmp_path / "session.zip"
    dl.value.save_as(zipped)
    other = _page(browser, app.url)
    assert _run_names(other) == [], "another browser sees this one's runs"
    with other.expect_file_chooser() as chooser:
        other.locator("#session-open").click()
    chooser.value.set_files(str(zipped))
    other.get_by_text(re.compile(r"Opened 1 run\(s\)")).wait_for(timeout=60_000)
    assert _run_names(other, pick=names[0]) == names  # evaluated again from its saved weights, on digits loaded again
    shot(other, "opened-session", tmp_path)
