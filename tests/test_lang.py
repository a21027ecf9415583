"""The studio in English and Simplified Chinese: the language chosen, the table, the page's words.

The whole page is checked here, in process: every component's words (labels, help lines,
buttons, Markdown, menu entries, table headers) has its Chinese entry. What events send is
checked through ``speak.translate_outputs`` and, in a browser, by test_e2e_lang.
"""
from __future__ import annotations

import re
from types import SimpleNamespace

import pandas as pd
import plotly.graph_objects as go
import pytest

import gradio as gr
from gradio.context import LocalContext

from tlcore.ui import build_app, lang, speak


@pytest.mark.parametrize("header, want", [
    ("zh-CN,zh;q=0.9,en;q=0.8", lang.ZH), ("zh-TW", lang.ZH), ("zh", lang.ZH),
    ("en-US,en;q=0.9", lang.EN), ("fr-FR,fr;q=0.9", lang.EN), ("", lang.EN), (None, lang.EN),
    ("en;q=0.5,zh;q=0.9", lang.ZH), ("fr,zh-CN;q=0.8,en;q=0.7", lang.ZH), ("de,en;q=0.8,zh;q=0.7", lang.EN),
    ("zh;q=abc,en", lang.EN),
])
def test_browser_language_picks(header, want):
    assert lang.from_header(header) == want


def test_words_translate_whole_then_sentence_by_sentence():
    assert lang.tr("Train", lang.ZH) == lang.STRINGS["Train"] != "Train"
    assert lang.tr("Train", lang.EN) == "Train"
    two = "Train\nEvaluate"
    assert lang.tr(two, lang.ZH) == f"{lang.STRINGS['Train']}\n{lang.STRINGS['Evaluate']}"
    assert lang.tr("A sentence nobody wrote down.", lang.ZH) == "A sentence nobody wrote down."
    assert "A sentence nobody wrote down." in lang.untranslated()
    assert lang.tr(3, lang.ZH) == 3 and lang.tr("", lang.ZH) == ""


def test_numbers_go_back_into_the_template_in_order(monkeypatch):
    monkeypatch.setitem(lang.TEMPLATES, "{0} of {1} right", "{1} 个中对了 {0} 个")
    assert lang.abstract("45 of 50 right") == "{0} of {1} right"
    assert lang.tr("45 of 50 right", lang.ZH) == "50 个中对了 45 个"
    assert lang.tr("7 of 1,000 right", lang.ZH) == "1,000 个中对了 7 个"
    # A digit inside a name is part of the name, not a number.
    assert lang.abstract("lenet5 has conv1 and 28×28 inputs") == "lenet5 has conv1 and {0}×{1} inputs"


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"\{\d+\}", text))


def test_every_template_keeps_its_numbers_and_markup():
    for en, zh in lang.TEMPLATES.items():
        assert _placeholders(en) == _placeholders(zh), en
    for en, zh in {**lang.STRINGS, **lang.TEMPLATES}.items():
        assert zh.strip(), en
        assert en.count("**") == zh.count("**"), en
        assert en.count("\n") == zh.count("\n"), en
        assert re.findall(r"</?\w+", en) == re.findall(r"</?\w+", zh), en


@pytest.fixture(scope="module")
def page():
    return speak.Page(build_app())


def _words(update) -> list[str]:
    if not isinstance(update, dict):
        return []
    value = update.get("value")
    words = [update.get(p) for p in speak.PROPS] + (list(value["headers"]) if isinstance(value, dict) else [value])
    words += [shown for shown, _ in update.get("choices") or []]
    return [w for w in words if isinstance(w, str)]


def test_no_word_of_the_page_is_left_in_english(page):
    """Every component's words has an entry (a name such as ``lenet5`` is its own entry)."""
    english = [w for u in page.updates(lang.EN, everything=True) for w in _words(u)]
    chinese = [w for u in page.updates(lang.ZH, everything=True) for w in _words(u)]
    assert len(english) == len(chinese) > 250
    words = [(en, zh) for en, zh in zip(english, chinese) if re.search("[A-Za-z]", en)]  # (not "0" or "→")
    missing = sorted({en for en, zh in words if en == zh and en not in lang.STRINGS})
    assert not missing, f"{len(missing)} words of the page have no Chinese entry: {missing[:20]}"
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", zh)) for _, zh in words) > 0.8 * len(words)


def test_tabs_and_buttons_are_among_them(page):
    updates = dict(zip((b._id for b in page.blocks), page.updates(lang.ZH, everything=True)))
    tabs = [b for b in page.blocks if isinstance(b, gr.Tab)]
    assert len(tabs) >= 8
    assert all(re.search(r"[\u4e00-\u9fff]", updates[t._id]["label"]) for t in tabs)
    train = next(b for b in page.blocks if isinstance(b, gr.Button) and b.value == "Start training")
    assert updates[train._id]["value"] == lang.STRINGS["Start training"]


def test_the_switch_says_again_what_events_sent(page):
    """Switching language mid-session rewrites a status an event filled, from the English it sent;
    a status no event filled shows its first words in the new language."""
    request = SimpleNamespace(session_hash="test-switch", headers={"accept-language": "en-US"})
    statuses = [b for b in page.blocks if isinstance(b, gr.Markdown) and b._id in page.changing]
    filled, untouched = statuses[0], statuses[1]
    token = LocalContext.request.set(request)
    try:
        assert speak.translate_outputs("Train", [filled]) == "Train"  # an English page got it
    finally:
        LocalContext.request.reset(token)
    try:
        out = page.switch(lang.LANGS[lang.ZH], request)
        assert out[0] == lang.ZH and lang.current(request) == lang.ZH
        assert out[1 + page.blocks.index(filled)]["value"] == lang.STRINGS["Train"]
        assert out[1 + page.blocks.index(untouched)]["value"] == lang.tr(untouched.value, lang.ZH)
        back = page.switch(lang.LANGS[lang.EN], request)
        assert back[0] == lang.EN and back[1 + page.blocks.index(filled)]["value"] == "Train"
    finally:
        lang.forget(request)
    assert lang.sent(request, filled._id) is None and lang.current(request) == lang.EN


def test_what_an_event_sends_is_translated():
    md, drop, plot, table = gr.Markdown(render=False), gr.Dropdown(render=False), gr.Plot(render=False), \
        gr.Dataframe(render=False)
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 2], name="scratch"), layout=dict(title="Accuracy"))
    out = speak.translate_outputs(
        ["Train", gr.update(label="Backbone", choices=["scratch", ("fine-tune", "ft")], value="scratch"),
         fig, pd.DataFrame({"strategy": ["scratch"]})], [md, drop, plot, table], lang.ZH)
    assert out[0] == lang.STRINGS["Train"]
    assert out[1]["label"] == lang.STRINGS["Backbone"]
    assert out[1]["choices"] == [(lang.STRINGS["scratch"], "scratch"), (lang.STRINGS["fine-tune"], "ft")]
    assert out[1]["value"] == "scratch"  # a value is what the handler reads back: never translated
    assert out[2].layout.title.text == lang.STRINGS["Accuracy"] and out[2].data[0].name == lang.STRINGS["scratch"]
    assert fig.data[0].name == "scratch"  # the session's own figure is left as it was
    assert list(out[3].columns) == [lang.STRINGS["strategy"]]
    assert speak.translate_outputs("Train", [md], lang.EN) == "Train"


def test_words_are_remembered_for_a_bounded_number_of_sessions(monkeypatch):
    """API clients never close their sessions: the oldest sessions' words go past the bound."""
    monkeypatch.setattr(lang, "MOST_REMEMBERED", 3)
    requests = [SimpleNamespace(session_hash=f"bound-{i}", headers={}) for i in range(5)]
    for r in requests:
        token = LocalContext.request.set(r)
        try:
            lang.remember(7, f"words of {r.session_hash}")
        finally:
            LocalContext.request.reset(token)
    assert [lang.sent(r, 7) for r in requests] == [None, None, "words of bound-2", "words of bound-3",
                                                    "words of bound-4"]
    for r in requests:
        lang.forget(r)
