"""The page in its visitor's language: English as the code writes it, Simplified Chinese from a table.

The code (engine and tabs) writes English only. Text reaches a visitor by two roads, and both
pass through here:

- the page's own words (labels, help lines, buttons, tabs, static Markdown, menu entries): the
  first paint, and the switch, set them in the session's language (``Speaker.updates``);
- what an event sends (statuses, conclusions, tables' headers, charts' titles, toasts, errors):
  every event's function is wrapped so its outputs are translated on the way out
  (``Speaker.wrap``; toasts and errors through ``tr`` in ``text``).

The language is the switch's choice if the visitor made one (kept in the browser), else the
browser's first language (its Accept-Language header): any Chinese gets Simplified Chinese,
anything else English. API clients send no such header and get English.

A sentence with numbers in it is looked up with its numbers taken out (``{0}``, ``{1}``, ...) and
put back into the translated template in the same order: the same measurements in either
language. Text with no entry stays English (``untranslated`` lists it, for the table's tests).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import gradio as gr
from gradio.context import LocalContext

EN, ZH = "en", "zh-CN"
LANGS = {EN: "English", ZH: "中文"}
_TABLE = json.loads((Path(__file__).with_name("zh_CN.json")).read_text(encoding="utf-8"))
STRINGS: dict[str, str] = _TABLE["strings"]
TEMPLATES: dict[str, str] = _TABLE["templates"]
# What a template takes out and puts back: a number that is a word of its own ("28" in "28×28"
# and "3.5", not the 5 of lenet5 or conv1), a `code span`, a 'quoted' name (run, file, class) and
# a file's name (upload.zip).
_NUMBER = re.compile(r"(?<![A-Za-z_\d.])\d+(?:[.,]\d+)*")
_FILE = r"(?<![\w/.-])[\w-]+(?:\.[\w-]+)*\.(?:zip|png|jpe?g|bmp|gif|webp|pt|onnx)\b"
_SLOT = re.compile(r"`[^`\n]*`|(?<![A-Za-z])'[^'\s]+'|" + _FILE + "|" + _NUMBER.pattern)
# Pieces translated on their own: sentences (". ", "? ", "! ", ": " before a capital, also after
# a closing ** or *) and the " · " between a status line's parts (kept as they are).
_PIECES = re.compile(r"((?:(?<=[.?!:])|(?<=[.?!:]\*)|(?<=[.?!:]\*\*))\s+(?=[A-Z*(`])| · )")
_CHOSEN: dict[str, str] = {}  # a session's switch, by Gradio session hash
_SENT: dict[str, dict[int, str]] = {}  # a session's worded components' last words from an event, in English
MOST_REMEMBERED = 2000  # sessions whose words are kept for the switch (a closed tab's go at once)
_MISSED: set[str] = set()
# Set, every text that would go out in Chinese is looked up even for English visitors, and what
# has no entry is added to this file: how the table's holes are found (run the suite with it).
RECORDING = os.environ.get("TLCORE_RECORD_UNTRANSLATED")


def from_header(accept: str | None) -> str:
    """The language for an Accept-Language header: the first (by weight) that is English or
    Chinese decides; none of the two: English."""
    tags = []
    for i, part in enumerate((accept or "").split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        tags.append((-weight, i, tag.strip().lower()))
    for _, _, tag in sorted(tags):
        if tag.startswith("zh"):
            return ZH
        if tag.startswith("en"):
            return EN
    return EN


def current(request=None) -> str:
    """The language of the event being answered (English outside one, and for API clients)."""
    request = request if request is not None else LocalContext.request.get(None)
    if request is None:
        return EN
    chosen = _CHOSEN.get(getattr(request, "session_hash", None) or "")
    if chosen:
        return chosen
    headers = getattr(request, "headers", None) or {}
    return from_header(headers.get("accept-language"))


def choose(request, lang: str | None) -> None:
    """The switch: ``lang`` for this session from now on (None or unknown: back to the browser's)."""
    hash_ = getattr(request, "session_hash", None)
    if not hash_:
        return
    if lang in LANGS:
        _CHOSEN[hash_] = lang
    else:
        _CHOSEN.pop(hash_, None)


def forget(request) -> None:
    """A closed tab: its choice and its remembered words go."""
    _CHOSEN.pop(getattr(request, "session_hash", None) or "", None)
    _SENT.pop(getattr(request, "session_hash", None) or "", None)


def remember(component_id: int, english: str) -> None:
    """The English of the words an event just sent to a component (of the current event's
    session), so that the switch can say them again in the other language."""
    request = LocalContext.request.get(None)
    hash_ = getattr(request, "session_hash", None)
    if hash_:
        if hash_ not in _SENT and len(_SENT) >= MOST_REMEMBERED:  # API clients never close: the oldest go
            del _SENT[next(iter(_SENT))]
        _SENT.setdefault(hash_, {})[component_id] = english


def sent(request, component_id: int) -> str | None:
    """What an event last sent to that component of ``request``'s session, in English (None: nothing)."""
    return _SENT.get(getattr(request, "session_hash", None) or "", {}).get(component_id)


def tr(text, lang: str | None = None):
    """``text`` in ``lang`` (default: the current event's): line by line, sentence by sentence."""
    lang = lang or current()
    if not isinstance(text, str) or not text.strip():
        return text
    if lang == EN:
        if RECORDING:
            tr(text, ZH)
        return text
    whole = _one(text)
    if whole is not None:
        return whole
    return "\n".join(_line(line) for line in text.split("\n"))


def _line(line: str) -> str:
    found = _one(line)
    if found is not None:
        return found
    pieces = _PIECES.split(line)  # text, separator, text, ...
    out = []
    for i, piece in enumerate(pieces):
        found = piece if i % 2 else _one(piece)
        if found is None:
            _miss(piece)
        out.append(piece if found is None else found)
    return "".join(out)


def _one(text: str) -> str | None:
    """One piece's translation: as it is, or as a template with its numbers and names taken out."""
    stripped = text.strip()
    if not stripped:
        return text
    if stripped in STRINGS:
        return text.replace(stripped, STRINGS[stripped])
    slots = [m.group(0) for m in _SLOT.finditer(stripped)]
    template = TEMPLATES.get(abstract(stripped)) if slots else None
    if template is None:
        return None
    return text.replace(stripped, template.format(*slots))


def abstract(text: str) -> str:
    """``text`` with its numbers, `code` and 'names' as ``{0}``, ``{1}``, ...; braces of its own doubled."""
    out, last = [], 0
    for k, m in enumerate(_SLOT.finditer(text)):
        out += [text[last:m.start()].replace("{", "{{").replace("}", "}}"), "{%d}" % k]
        last = m.end()
    return "".join(out) + text[last:].replace("{", "{{").replace("}", "}}")


def _miss(text: str) -> None:
    text = text.strip()
    if text.startswith("<") or not re.search(r"[A-Za-z]{3}", text) or text in _MISSED or len(_MISSED) >= 10_000:
        return
    _MISSED.add(text)
    if RECORDING:
        with open(RECORDING, "a", encoding="utf-8") as f:
            f.write(json.dumps(text, ensure_ascii=False) + "\n")


def untranslated() -> list[str]:
    """Text asked for in Chinese that had no entry, since the process started."""
    return sorted(_MISSED)
