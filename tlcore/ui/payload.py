"""API payloads checked against the handler's own signature before it runs.

Gradio's components keep a browser's values in shape, but the API (``gradio_client``, plain
HTTP) can send any JSON in any slot: a number where a run's name goes, a list for a format.
:func:`typed` refuses such a value with a message naming the input (gr.Error) instead of the
handler failing somewhere inside with an AttributeError. Only text and lists of text are
checked (the annotations ``str`` and ``list[str]``; None is always let through, as an empty
input); numbers go on to RunConfig, which names their valid range.
"""
from __future__ import annotations

import functools
import inspect
import types
import typing

from .text import error


def _kind(hint) -> str | None:
    # Only a Union's arguments are alternatives: list[str]'s argument is its items' type.
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = (set(typing.get_args(hint)) - {type(None)} if union else {hint}) or {hint}
    if args == {str}:
        return "text"
    if args == {list[str]}:
        return "a list of text"
    return None


def _fits(value, kind: str) -> bool:
    if value is None:
        return True
    if kind == "text":
        return isinstance(value, str)
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def typed(fn):
    """``fn`` (a function or a generator function), refusing text inputs that are not text."""
    hints = typing.get_type_hints(fn)
    checked = {name: k for name, h in hints.items() if name != "return" and (k := _kind(h))}
    sig = inspect.signature(fn)

    def check(args, kwargs) -> None:
        for name, value in sig.bind_partial(*args, **kwargs).arguments.items():
            if name in checked and not _fits(value, checked[name]):
                raise error(f"{name} must be {checked[name]}, got {type(value).__name__} {value!r:.40}.", "Refused")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            check(args, kwargs)
            yield from fn(*args, **kwargs)
        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        check(args, kwargs)
        return fn(*args, **kwargs)
    return call
