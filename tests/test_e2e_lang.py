"""Issue #27 in a real browser: a browser whose language is Chinese sees the studio in Simplified
Chinese (tabs, buttons, help lines, a conclusion written from the run's numbers), an English one
sees English, and the switch changes the page and is kept across a reload.

Screenshots (1280x720) go to $TLCORE_SCREENSHOTS when set."""
from __future__ import annotations

import re

from e2e_pages import shot

from tlcore.ui import lang

VIEW = {"width": 1280, "height": 720}
TABS = ("Lesson", "Data", "Capture", "Model", "Train", "Evaluate", "Compare", "Draw")
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _page(chromium, url: str, locale: str):
    page = chromium.new_context(viewport=VIEW, locale=locale).new_page()
    page.goto(url)
    page.locator("#lesson-go-1").wait_for(timeout=30_000)
    return page


def _tabs_in(page, language: str, timeout: float = 30_000) -> None:
    for tab in TABS:
        page.get_by_role("tab", name=lang.tr(tab, language), exact=True).wait_for(timeout=timeout)


def _step_one(page) -> str:
    """Run the lesson's first step (the source model read on MNIST); its sentence once written."""
    page.locator("#lesson-go-1").click()
    said = page.locator("#lesson-said-1")
    said.get_by_text(re.compile(r"\d+\.\d%")).first.wait_for(timeout=60_000)
    return said.inner_text()


def test_a_chinese_browser_sees_the_studio_in_chinese(app, chromium, tmp_path):
    page = _page(chromium, app.url, "zh-CN")
    _tabs_in(page, lang.ZH)
    assert page.locator("#lesson-go-1").inner_text() == lang.STRINGS["Run step 1"]
    said = _step_one(page)
    # The conclusion: the same measurement as in English, written in Chinese (numbers as measured).
    assert CHINESE.search(said) and not re.search(r"\bIt reads\b|\bMNIST test digits\b", said), said
    shot(page, "zh-lesson-1", tmp_path)
    page.get_by_role("tab", name=lang.STRINGS["Train"], exact=True).click()
    page.get_by_role("button", name=lang.STRINGS["Start training"]).wait_for(timeout=10_000)
    page.get_by_text(lang.STRINGS["passes over the training split"]).wait_for(timeout=10_000)  # a help line
    shot(page, "zh-train", tmp_path)


def test_an_english_browser_sees_english_and_the_switch_changes_it(app, chromium, tmp_path):
    page = _page(chromium, app.url, "en-US")
    _tabs_in(page, lang.EN)
    said = _step_one(page)
    assert re.search(r"It reads \d+\.\d% of the \d+ MNIST test digits", said) and not CHINESE.search(said), said
    page.locator("#language").get_by_text(lang.LANGS[lang.ZH]).click()
    _tabs_in(page, lang.ZH, timeout=10_000)
    assert page.locator("#lesson-go-1").inner_text() == lang.STRINGS["Run step 1"]
    # The sentence already written is said again in Chinese, with the same numbers.
    page.wait_for_function("() => /[\\u4e00-\\u9fff]/.test(document.querySelector('#lesson-said-1').innerText)",
                           timeout=10_000)
    rewritten = page.locator("#lesson-said-1").inner_text()
    assert re.findall(r"\d+\.\d%", rewritten) == re.findall(r"\d+\.\d%", said), (said, rewritten)
    page.reload()  # the choice is kept in this browser
    _tabs_in(page, lang.ZH)
    assert CHINESE.search(_step_one(page))
    shot(page, "switched-zh", tmp_path)
    page.locator("#language").get_by_text(lang.LANGS[lang.EN]).click()
    _tabs_in(page, lang.EN, timeout=10_000)
    assert page.locator("#lesson-go-1").inner_text() == "Run step 1"
