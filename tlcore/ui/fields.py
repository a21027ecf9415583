"""App inputs for RunConfig fields, made from each field's Knob (label, help, choices, range).

No minimum, maximum or precision goes on a number box: Gradio would refuse or round with its
own words; ``RunConfig.validate`` is the one place that checks, with the CLI's message.
"""
from __future__ import annotations

import gradio as gr

from ..config import RunConfig


def _switch(knob) -> dict:
    """An optional switch's choices as the app offers them: None is the knob's word for "let the engine decide"."""
    return {knob.auto: None, "on": True, "off": False}


def component(name: str, value=..., **kw) -> gr.components.Component:
    """The input for RunConfig field ``name``, at its default unless ``value`` is given; ``kw``
    overrides the knob's label and help."""
    knob = RunConfig.knob(name)
    value = getattr(RunConfig, name) if value is ... else value
    kw = {"label": knob.label or name, "info": knob.help, **kw}
    if knob.kind == "choice":  # an optional one offers its word for None first ("off")
        offered = [knob.auto] * knob.optional + list(knob.choices)
        return gr.Dropdown(offered, value=knob.auto if value is None else value, **kw)
    if knob.kind == "bool" and knob.optional:
        return gr.Dropdown(list(_switch(knob)), value=next(k for k, v in _switch(knob).items() if v is value), **kw)
    if knob.kind == "bool":
        return gr.Checkbox(value, **kw)
    if knob.slider is not None:
        lo, hi, step = knob.slider
        return gr.Slider(lo, hi, value=value, step=step, **kw)
    # The arrow keys' step: 1 on the learning rate made ArrowUp turn 0.01 into 1.01.
    return gr.Number(value, step=knob.step or (1 if knob.integer else 0.01), **kw)


def value(name: str, shown):
    """What a component's value means for the field (a switch's word becomes its value; anything
    else goes to RunConfig as it is, to be checked there)."""
    knob = RunConfig.knob(name)
    if knob.kind == "bool" and knob.optional:
        return _switch(knob).get(shown, shown)
    if knob.kind == "choice" and knob.optional and shown == knob.auto:
        return None
    return shown
