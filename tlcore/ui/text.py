"""User-facing text as the page renders it. Toasts and Markdown both read HTML, so a message that
quotes ``<class>/<image>`` or a file name lost those words; every message goes through here."""
from __future__ import annotations

import html

import gradio as gr


def escape(text) -> str:
    """``text`` shown as written wherever it is rendered as Markdown or HTML."""
    return html.escape(str(text), quote=False)


def warn(text) -> None:
    gr.Warning(escape(text))


def info(text) -> None:
    gr.Info(escape(text))


def error(text, title: str) -> gr.Error:
    """A refusal to raise (the event's outputs are left as they were), without a traceback."""
    return gr.Error(escape(text), title=title, print_exception=False)
