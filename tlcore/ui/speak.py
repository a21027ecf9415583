"""The built page in the session's language (lang.py holds the language and the table).

``Page(demo)`` knows every component with words of its own (label, help line, placeholder, a
button's or a Markdown's text, menu entries, a table's headers). ``first`` sets them as the page
opens in another language than English (nothing is sent for English); ``switch`` when the visitor
picks the other language.
``wrap`` translates what every event sends, on its way out.
"""
from __future__ import annotations

import functools
import inspect
import json

import gradio as gr
from gradio.blocks import Block

from . import lang

PROPS = ("label", "info", "placeholder")
# Components whose value is words the page wrote (a Textbox's or a Dropdown's value is the visitor's).
WORDED = (gr.Markdown, gr.HTML, gr.Button, gr.DownloadButton, gr.UploadButton)
KEY = "tlcore-language"  # where the browser keeps the switch's choice
SWITCH = "language"  # the switch's elem_id


class Page:
    def __init__(self, demo: gr.Blocks):
        self.demo = demo
        # (The switch says each language in its own words.)
        self.blocks = [b for b in demo.blocks.values() if self._has_words(b) and b.elem_id != SWITCH]

    @functools.cached_property
    def changing(self) -> set[int]:
        """Set by events (a status, a list of runs): the switch leaves these as the last event
        left them. (Read at the first call, when every event is wired.)"""
        return {c._id for fn in self.demo.fns.values() for c in fn.outputs}

    @functools.cached_property
    def read(self) -> set[int]:
        """Read by events: a table among them keeps its headers (a handler may look columns up)."""
        return {c._id for fn in self.demo.fns.values() for c in fn.inputs}

    @staticmethod
    def _has_words(block) -> bool:
        return (any(isinstance(getattr(block, p, None), str) for p in PROPS)
                or isinstance(block, WORDED)  # (one without words yet gets them from events)
                or bool(getattr(block, "choices", None))
                or isinstance(block, gr.Dataframe))

    def updates(self, language: str, everything: bool) -> list:
        """An update per component: its words in ``language``; those set by events only if ``everything``."""
        # (A button's text is its label: an event may grey it out, but never rewrites it.)
        return [self._update(b, language, everything or b._id not in self.changing or isinstance(b, gr.Button))
                for b in self.blocks]

    def _update(self, block, language: str, own: bool):
        props = {p: lang.tr(v, language) for p in PROPS if isinstance(v := getattr(block, p, None), str)}
        if own and isinstance(block, WORDED) and isinstance(block.value, str):
            props["value"] = lang.tr(block.value, language)
        if own and getattr(block, "choices", None):
            props["choices"] = [(lang.tr(shown, language), value) for shown, value in block.choices]
        if own and isinstance(block, gr.Dataframe) and block._id not in self.read and isinstance(block.value, dict):
            # (Gradio applies new headers only with a value: the first value, headers translated.)
            props["value"] = _table(block.value, language)
        return gr.update(**props) if props else gr.skip()

    @staticmethod
    def opening(kept: str | None, request: gr.Request):
        """The page opens: the kept choice, if any, is this session's (else the browser's); the switch shows it."""
        lang.choose(request, kept)
        return gr.update(value=lang.LANGS[lang.current(request)])

    def first(self, request: gr.Request):
        """The page's words in the session's language, as it opens in one other than English."""
        return self.updates(lang.current(request), everything=True)

    def switch(self, shown: str, request: gr.Request):
        """The switch: the page's words in the chosen language (what events wrote in them too, from
        the English they sent), the choice kept in the browser."""
        language = next((k for k, v in lang.LANGS.items() if v == shown), lang.EN)
        lang.choose(request, language)
        updates = self.updates(language, everything=False)
        for i, block in enumerate(self.blocks):  # (nothing sent: it still shows its first words)
            english = (lang.sent(request, block._id) or block.value) if isinstance(block, WORDED) else None
            if isinstance(english, str):
                updates[i] = {**updates[i], "__type__": "update", "value": lang.tr(english, language)}
        return [language, *updates]


def build() -> tuple[gr.Radio, gr.BrowserState]:
    """The switch (English / 中文) and the browser's memory of it."""
    switch = gr.Radio(list(lang.LANGS.values()), value=lang.LANGS[lang.EN], show_label=False, container=False,
                      min_width=210, scale=0, elem_id=SWITCH)
    return switch, gr.BrowserState("", storage_key=KEY)


def wire(demo: gr.Blocks, switch: gr.Radio, kept: gr.BrowserState) -> list:
    """The page's words follow the language from its first paint on. Returned: two events, of which
    one succeeds (chain the rest of the first paint on each with ``.success``): in English at once,
    in another language once the page's words are set, so events' own words land after these.

    Only a page opening in another language sends every worded component (225). Gradio's page keeps
    a status for each component an event has had as output or input, and at every status change of
    any event updates each of them: one opening event with them all cost every page 2.4 s of the
    browser's CPU to open (6.7 -> 4.3 s on a 2-core VM) and slowed every later event of its session."""
    page = Page(demo)
    private = dict(api_visibility="private")
    steps = _steps_js(page)
    switch.input(_speaks(page.switch), switch, [kept, *page.blocks], **private).then(None, switch, js=steps)
    opened = demo.load(_speaks(page.opening), kept, switch, **private)
    opened.then(None, switch, js=steps)
    english = opened.then(_speaks(_only(english=True)), switch, None, **private)
    other = opened.then(_speaks(_only(english=False)), switch, None, **private) \
        .success(_speaks(page.first), None, page.blocks, **private)
    return [english, other]


def _only(english: bool):
    """A gate: it fails, without a word, where the page opens in the other kind of language, and
    what is chained on it with ``.success`` does not run (nor show as pending)."""
    def gate(shown: str) -> None:
        if (shown == lang.LANGS[lang.EN]) != english:
            raise gr.Error("", visible=False, print_exception=False)
    return gate


def _steps_js(page: Page) -> str:
    """JS that writes a walkthrough's step titles in the language the switch shows. Gradio's
    stepper draws a step's title when that step first appears, so an update reaches only the
    open one; the others are written into its header here (the same words the update carries)."""
    steps = [b for b in page.blocks if isinstance(b, gr.Step)]
    titles = {shown: {str(b.id): lang.tr(b.label, code) for b in steps} for code, shown in lang.LANGS.items()}
    return """(shown) => {
  const titles = %s[shown] || {};
  for (const [id, title] of Object.entries(titles))
    document.querySelectorAll(`.stepper button[data-tab-id="${id}"] .step-label`).forEach(e => e.textContent = title);
}""" % json.dumps(titles, ensure_ascii=False)


def _speaks(fn):
    """Already in the session's language: ``wrap`` leaves it alone."""
    @functools.wraps(fn)
    def speaking(*args, **kwargs):
        return fn(*args, **kwargs)
    speaking.speaks = True
    return speaking


def wrap(demo: gr.Blocks) -> None:
    """Every event's outputs translated on their way out (the page's own words are set by ``Page``)."""
    for block_fn in demo.fns.values():
        if block_fn.fn is None or not block_fn.outputs or getattr(block_fn.fn, "speaks", False) \
                or block_fn.is_validator_function:
            continue
        block_fn.fn = _translating(block_fn.fn, list(block_fn.outputs))


def _translating(fn, outputs: list):
    out = functools.partial(translate_outputs, outputs=outputs)
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def agen(*args, **kwargs):
            async for value in fn(*args, **kwargs):
                yield out(value)
        return agen
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def coro(*args, **kwargs):
            return out(await fn(*args, **kwargs))
        return coro
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args, **kwargs):
            for value in fn(*args, **kwargs):
                yield out(value)
        return gen

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        return out(fn(*args, **kwargs))
    return plain


def translate_outputs(value, outputs: list, language: str | None = None):
    """An event's return value with its words in ``language`` (default: the event's)."""
    language = language or lang.current()
    if language == lang.EN:
        if lang.RECORDING:  # (looked up, so that what has no entry is found; sent as it was)
            _each(value, outputs, functools.partial(translate_value, language=lang.ZH))
        else:  # the words are remembered all the same, for the switch
            _each(value, outputs, _remembered)
        return value
    return _each(value, outputs, functools.partial(translate_value, language=language))


def _each(value, outputs: list, fn):
    """``fn(value, component)`` applied to each output of an event's return value."""
    if len(outputs) == 1:
        return fn(value, outputs[0])
    if isinstance(value, dict) and value and all(isinstance(k, Block) for k in value):
        return {k: fn(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and len(value) == len(outputs):
        return type(value)(fn(v, c) for v, c in zip(value, outputs))
    return value


def _remembered(value, component):
    if isinstance(component, WORDED):
        words = value.get("value") if isinstance(value, dict) and value.get("__type__") == "update" else value
        if isinstance(words, str):
            lang.remember(component._id, words)
    return value


def translate_value(value, component, language: str):
    """One output's value: an update's words, a worded component's text, a table's headers, a
    chart's titles and legend, a gallery's captions."""
    if isinstance(value, Block):
        value = {**value.constructor_args, "__type__": "update"}
    if isinstance(value, dict) and value.get("__type__") == "update":
        value = dict(value)
        if isinstance(component, WORDED) and isinstance(value.get("value"), str):
            lang.remember(component._id, value["value"])
        for p in PROPS:
            if isinstance(value.get(p), str):
                value[p] = lang.tr(value[p], language)
        if "choices" in value and value["choices"]:
            value["choices"] = [_choice(c, language) for c in value["choices"]]
        if "value" in value:
            value["value"] = translate_value(value["value"], component, language)
        return value
    if isinstance(value, str) and isinstance(component, WORDED):
        lang.remember(component._id, value)
        return lang.tr(value, language)
    if isinstance(value, str):
        return value
    if isinstance(component, gr.Plot):
        return _figure(value, language)
    if isinstance(component, gr.Gallery) and isinstance(value, list):
        return [(item[0], lang.tr(item[1], language)) if isinstance(item, tuple) and len(item) == 2 else item
                for item in value]
    if isinstance(component, gr.Dataframe) and hasattr(value, "rename"):
        return value.rename(columns=lambda c: lang.tr(c, language) if isinstance(c, str) else c)
    if isinstance(component, gr.Dataframe) and isinstance(value, dict) and "headers" in value:
        return _table(value, language)
    return value


def _table(value: dict, language: str) -> dict:
    return {**value, "headers": [lang.tr(h, language) if isinstance(h, str) else h for h in value["headers"]]}


def _choice(choice, language: str):
    if isinstance(choice, (list, tuple)) and len(choice) == 2:
        return (lang.tr(choice[0], language), choice[1])
    return (lang.tr(choice, language), choice) if isinstance(choice, str) else choice


def _figure(fig, language: str):
    """A Plotly figure's words translated (a copy: the session may keep the figure)."""
    if not hasattr(fig, "to_plotly_json"):
        return fig
    import plotly.graph_objects as go
    fig = go.Figure(fig)
    layout = fig.layout
    if layout.title and layout.title.text:
        layout.title.text = lang.tr(layout.title.text, language)
    for name in [k for k in layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]:
        axis = layout[name]
        if axis.title and axis.title.text:
            axis.title.text = lang.tr(axis.title.text, language)
    if layout.legend and layout.legend.title and layout.legend.title.text:
        layout.legend.title.text = lang.tr(layout.legend.title.text, language)
    for note in layout.annotations or ():
        if note.text:
            note.text = lang.tr(note.text, language)
    for trace in fig.data:
        if getattr(trace, "name", None):
            trace.name = lang.tr(trace.name, language)
    return fig
