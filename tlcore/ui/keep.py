"""A class's work kept: found again after a reload, and saved or opened as one zip.

A browser holds a key (gr.BrowserState, in its local storage) that names its session on the
server (:class:`tlcore.ui.session.Keeper`): the page's first event swaps the fresh session for
the kept one, and every tab is then painted from it (the runs lists, Compare's last comparison
and curve, the lesson's steps). "Save session" writes the runs and those views as one zip;
"Open session" reads one back into this session (an upload: checked like any other).
"""
from __future__ import annotations

import dataclasses
import time
import uuid

import gradio as gr

from ..api import Point, read_bundle, reopened_run, write_bundle
from ..errors import TLCoreError
from .session import KEPT, RunRecord, Session, bind
from .text import escape, warn

STORAGE_KEY = "tlcore-session"
KEPT_NOTE = (f"Your runs stay in this browser for {KEPT.hours:g} hours after its last tab closes (not across a "
             "restart of the server). Save the session to keep them longer or to open them elsewhere.")


def resume(session: Session, key: str | None, request: gr.Request = None):
    """The page's first event: this browser's kept session (or this fresh one, kept from now on)."""
    if not isinstance(session, Session):
        return gr.skip(), gr.skip()
    kept, key = KEPT.resume(key, session)
    bind(kept, request)
    return kept, key


def save_session(session: Session):
    """Every run of the session and Compare's last views in one zip, offered for download."""
    if not session.runs:
        warn("No runs to save yet: train, compare or teach something first.")
        return gr.skip(), "No runs to save yet."
    out = session.folder / f"tlcore-session-{time.strftime('%Y%m%d-%H%M')}.zip"
    write_bundle({name: rec.folder for name, rec in session.runs.items()}, out, extra=_views(session))
    return gr.update(value=str(out), visible=True), f"Saved {len(session.runs)} run(s) in {out.name}."


def _views(session: Session) -> dict:
    duel, c = session.duel_view, session.curve_view
    return {"duel": {"summary": duel["summary"], "curves": {k: [e if isinstance(e, dict) else vars(e) for e in v]
                                                            for k, v in duel["curves"].items()}} if duel else None,
            "curve": {**c, "points": [dataclasses.asdict(p) for p in c["points"]]} if c else None}


def open_session(session: Session, upload):
    """Add a saved session's runs to this one (a name already taken gets a number) and its views."""
    if not upload:
        return "Choose a session .zip (made by Save session)."
    try:
        bundle = read_bundle(str(upload), session.folder / f"opened-{uuid.uuid4().hex[:12]}")
        opened = [(name, folder, *reopened_run(folder)) for name, folder in bundle.runs.items()]
    except TLCoreError as e:
        warn(str(e))
        return f"**Not opened:** {escape(e)}"
    notes = []
    for name, folder, result, data, note in opened:
        name = name if name not in session.runs else session.runs.new_name(name)
        session.add_run(RunRecord(name, result, data, folder))
        if note:
            notes.append(f"{name}: {note}")
    _restore_views(session, bundle.extra)
    said = f"Opened {len(opened)} run(s): {', '.join(escape(n) for n, *_ in opened)}."
    return said + ("\n\n" + "\n\n".join(escape(n) for n in notes) if notes else "")


def _restore_views(session: Session, extra: dict) -> None:
    try:
        if extra.get("duel"):
            session.duel_view = {"summary": str(extra["duel"]["summary"]), "curves": dict(extra["duel"]["curves"])}
        if extra.get("curve"):
            c = extra["curve"]
            session.curve_view = {**c, "points": [Point(**p) for p in c["points"]]}
    except (KeyError, TypeError, ValueError):  # a view that does not read back is left out; the runs are there
        pass


def build(session_state: gr.State):
    """The key, and the Save / Open row (the app wires what they repaint)."""
    key = gr.BrowserState(None, storage_key=STORAGE_KEY)
    with gr.Row(equal_height=True):
        gr.Markdown(KEPT_NOTE, elem_id="kept-note")
        save = gr.Button("Save session", size="sm", elem_id="session-save", scale=0, min_width=140)
        opener = gr.UploadButton("Open session…", file_types=[".zip"], size="sm", elem_id="session-open", scale=0,
                                 min_width=140)
    saved = gr.File(label="Session zip", visible=False, elem_id="session-file")
    said = gr.Markdown(elem_id="session-said")
    save.click(save_session, session_state, [saved, said], api_visibility="private")
    opened = opener.upload(open_session, [session_state, opener], said, api_visibility="private")
    return key, opened
