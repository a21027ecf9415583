"""User-facing text as the page renders it. Toasts and Markdown both read HTML, so a message that
quotes ``<class>/<image>`` or a file name lost those words; every message goes through here, and
into the session's language (lang.tr)."""
from __future__ import annotations

import html

import gradio as gr

from .lang import tr


def escape(text) -> str:
    """``text`` shown as written wherever it is rendered as Markdown or HTML."""
    return html.escape(str(text), quote=False)


def warn(text) -> None:
    gr.Warning(escape(tr(str(text))))


def info(text) -> None:
    gr.Info(escape(tr(str(text))))


def error(text, title: str) -> gr.Error:
    """A refusal to raise (the event's outputs are left as they were), without a traceback; in the
    session's language."""
    return gr.Error(escape(tr(str(text))), title=tr(title), print_exception=False)
