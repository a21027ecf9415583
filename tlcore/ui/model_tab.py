"""Model tab: backbone, weights, and which layer groups are frozen, with live parameter counts."""
from __future__ import annotations

import functools
from typing import NamedTuple

import gradio as gr
import pandas as pd

from ..config import RunConfig
from ..errors import TLCoreError
from ..api import (
    BUNDLED_RUNS, NONE, architecture, create_backbone, freeze, frozen_for_preset, group_rates, list_backbones, list_runs,
    preset_names, read_run_config, suggested_model, unfreeze_plan as plan, weights_choices
)
from . import rank_panel
from .session import DEFAULT_BACKBONE, DEFAULT_FROZEN, DEFAULT_PRESET, DEFAULT_WEIGHTS, Session
from .text import escape, info, warn
from .payload import typed


class ModelTab(NamedTuple):
    backbone: gr.Dropdown
    weights: gr.Dropdown
    preset: gr.Dropdown
    frozen: gr.CheckboxGroup
    choice_inputs: list  # on_backbone's: session, backbone, weights, preset
    choice_outputs: list  # weights, preset, frozen
    describe_inputs: list  # describe's: session, backbone, weights, frozen, train_bn
    describe_outputs: list  # session, table, counts
    changed: list  # one event per way the user changes the model, each ending in describe
    schedule: gr.Dataframe  # which groups train in which epochs (gradual unfreezing), at what rate


def _model(session: Session, backbone: str, weights: str, num_classes: int):
    """This session's preview model (one at a time: VGG-11 alone is half a gigabyte). Only its
    layout is read, so random weights are not made at all (a layout costs no memory); named
    weights are loaded, which checks that they are there."""
    key = (backbone, weights, num_classes)
    if session.preview_key != key:
        session.preview, session.preview_key = None, None
        session.preview = (architecture(backbone, num_classes=num_classes) if weights == NONE else
                           create_backbone(backbone, weights=weights, num_classes=num_classes))
        session.preview_key = key
    return session.preview


def _num_classes(session: Session) -> int:
    return len(session.dataset.classes) if session.dataset is not None else 10


def describe(session: Session, backbone: str, weights: str, frozen: list[str], train_bn: bool):
    """Counts table for the current choice; frozen boxes are applied to a description copy."""
    try:
        check_weights(session, backbone, weights)
        model = _model(session, backbone, weights, _num_classes(session))
        freeze(model, frozen=list(frozen), train_bn=train_bn)  # "head" included: the engine says why not
    except TLCoreError as e:
        warn(e)
        return session, gr.update(), f"**Not changed:** {escape(e)}"
    session.backbone, session.weights, session.frozen, session.train_bn = backbone, weights, list(frozen), train_bn
    rows = [{"group": g.name, "parameters": g.params, "trainable": g.trainable, "frozen": g.trainable == 0}
            for g in model.layer_groups()]
    trainable, total = model.count_parameters()
    s = model.spec
    text = (f"**{trainable:,} of {total:,} parameters train** ({100 * trainable / total:.2f}%) · input "
            f"{s.channels}×{s.size}×{s.size} · weights: {model.weights} · {_num_classes(session)} classes")
    return session, pd.DataFrame(rows), text


SCHEDULE_INPUTS = ("epochs", "unfreeze_every", "lr", "body_lr_mult", "layer_lr_decay")  # Train tab fields
SCHEDULE_COLUMNS = ["epochs", "groups training", "rates (head first)"]


def schedule(session: Session, epochs, every, lr, body_lr_mult, layer_lr_decay):
    """Which layer groups train in which epochs, and at what rate, with the Train tab's settings."""
    model = session.preview
    try:
        cfg = RunConfig(epochs=epochs, unfreeze_every=every, lr=lr, body_lr_mult=body_lr_mult,
                        layer_lr_decay=layer_lr_decay).validate()
    except (TLCoreError, TypeError):
        return gr.skip()  # the Train tab says what is wrong when training starts
    if model is None:
        return pd.DataFrame(columns=SCHEDULE_COLUMNS)
    steps, rates = plan(model, cfg.unfreeze_every, cfg.epochs), group_rates(model, cfg)
    rows = []
    for i, (first, live) in enumerate(steps):
        last = steps[i + 1][0] - 1 if i + 1 < len(steps) else cfg.epochs
        span = f"{first}" if first == last else f"{first}-{last}"
        rows.append({"epochs": span, "groups training": ", ".join(live),
                     "rates (head first)": ", ".join(f"{rates[g]:.3g}" for g in live)})
    return pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)


@functools.lru_cache(maxsize=1)  # the shipped assets do not change while the app runs
def _bundled_runs() -> tuple[tuple[str, str, str], ...]:
    """(name, backbone, folder) of each bundled run, by name."""
    return tuple(sorted((f.name, read_run_config(f)["backbone"], str(f)) for f in list_runs(BUNDLED_RUNS)))


def weight_options(session: Session, backbone: str) -> list[tuple[str, str]]:
    """(label, value) pairs: named weights, bundled runs and this session's runs of this backbone."""
    out = [(w, w) for w in weights_choices(backbone)]
    out += [(f"bundled run: {name}", path) for name, bb, path in _bundled_runs() if bb == backbone]
    for name, rec in session.runs.items():
        if rec.result.config.backbone == backbone and rec.result.checkpoint:
            out.append((f"this session's run: {name}", str(rec.result.checkpoint)))
    return out


def use_suggested(session: Session):
    """The Data tab's suggested model, chosen: its backbone goes into the menu, whose change event
    (on_backbone, as for a user's choice) takes the suggested weights, applies the preset, describes
    the model and re-suggests the Train tab's settings. (Setting the weights menu here too raced
    that event: it sent the old weights against the new backbone's list, and Gradio refused them.)"""
    s = suggested_model(session.dataset) if session.dataset is not None else None
    if s is None:
        return gr.skip()
    session.next_weights = s["weights"]
    return gr.update(value=s["backbone"])


def refresh_weights(session: Session, backbone: str):
    return gr.update(choices=weight_options(session, backbone))


@typed
def choose_model(session: Session, backbone: str, weights: str, frozen: str, train_bn: bool):
    """API: like ticking the Model tab's boxes; ``frozen`` is a comma-separated list of groups."""
    return describe(session, backbone or "", weights or "none", [g.strip() for g in (frozen or "").split(",") if g.strip()],
                    bool(train_bn))


def check_weights(session: Session, backbone: str, weights: str) -> str:
    """Only the weights this session is offered: named ones, bundled runs, its own runs. A folder
    path sent through the API is refused, so no session can load another's run or any file."""
    options = weight_options(session, backbone)
    if weights not in [v for _, v in options]:
        names = ", ".join(label for label, _ in options)
        raise TLCoreError(f"Unknown weights {weights!r} for {backbone}. Valid weights: {names}.")
    return weights


def on_backbone(session: Session, backbone: str, weights: str, preset: str):
    """New backbone: refresh weights, presets and groups; apply the preset."""
    options = weight_options(session, backbone)
    values = [v for _, v in options]
    choices = options
    weights, session.next_weights = (session.next_weights if session.next_weights in values else
                                     weights if weights in values else values[0]), None
    try:
        model = _model(session, backbone, weights, _num_classes(session))
    except TLCoreError as e:
        warn(e)
        return gr.update(), gr.update(), gr.update()
    presets = preset_names(model)
    preset = preset if preset in presets else "linear-probe"
    body = model.body_group_names()
    if weights != "none" and preset == "full":
        preset = "linear-probe"  # pretrained: start by training only the head
    elif weights == "none" and preset != "full":  # a frozen random body learns nothing: not a baseline
        preset = "full"
        info("Random weights: every layer trains now (freezing preset: full). A frozen random body "
                "would only be a random projection, not a fair from-scratch baseline.")
    return (gr.update(choices=choices, value=weights), gr.update(choices=presets, value=preset, info=preset_info(preset)),
            gr.update(choices=body, value=frozen_for_preset(model, preset)))


def preset_info(preset: str) -> str:
    """The chosen preset in plain words (the dropdown's line under its label follows the choice)."""
    if preset == "linear-probe":
        return "linear probe: the pretrained body is frozen, only the new head trains"
    if preset == "full":
        return "full: every layer trains (fine-tuning the whole network)"
    k = preset.rsplit("-", 1)[-1]
    return f"the top {k} layer group{'s' * (k != '1')} of the body train with the new head; the rest stay frozen"


def on_preset(session: Session, backbone: str, weights: str, preset: str):
    try:
        frozen = frozen_for_preset(_model(session, backbone, weights, _num_classes(session)), preset)
    except TLCoreError as e:
        warn(e)
        return gr.update(), gr.update()
    return frozen, gr.update(info=preset_info(preset))


def build(session_state: gr.State) -> ModelTab:
    with gr.Row():
        with gr.Column(scale=1):
            backbone = gr.Dropdown(list_backbones(), value=DEFAULT_BACKBONE, label="Backbone", allow_custom_value=True,
                                   info="or type timm:<name> for any timm model")
            weights = gr.Dropdown(weight_options(Session(), DEFAULT_BACKBONE), value=DEFAULT_WEIGHTS,
                                  label="Pretrained weights",
                                  info="ImageNet, a saved run as the source model, or none (random)")
            preset = gr.Dropdown(["linear-probe", "full"], value=DEFAULT_PRESET, label="Freezing preset",
                                 info=preset_info(DEFAULT_PRESET))
            frozen = gr.CheckboxGroup(list(DEFAULT_FROZEN), value=list(DEFAULT_FROZEN),
                                      label="Frozen layer groups (input → output)")
            train_bn = gr.Checkbox(False, label="Let BatchNorm in frozen groups keep training",
                                   info="BatchNorm layers rescale their inputs with averages learnt on the source "
                                        "data; ticked, frozen groups still update those averages (and scales) on yours")
        with gr.Column(scale=2):
            counts = gr.Markdown()
            table = gr.Dataframe(headers=["group", "parameters", "trainable", "frozen"], interactive=False)
            gr.Markdown("**Schedule** (Train tab: epochs, learning rate, gradual unfreezing)")
            plan_table = gr.Dataframe(headers=SCHEDULE_COLUMNS, interactive=False, elem_id="unfreeze-schedule")
    rank_panel.build(session_state)
    choice_in, choice_out = [session_state, backbone, weights, preset], [weights, preset, frozen]
    desc_in = [session_state, backbone, weights, frozen, train_bn]
    desc_out = [session_state, table, counts]
    private = dict(api_visibility="private")
    # Every way the user changes the model ends in `describe`; the app chains more onto these.
    described = [comp.change(on_backbone, choice_in, choice_out, **private).then(describe, desc_in, desc_out, **private)
                 for comp in (backbone, weights)]
    described.append(preset.input(on_preset, choice_in, [frozen, preset], **private)
                     .then(describe, desc_in, desc_out, **private))
    described.append(frozen.input(describe, desc_in, desc_out, **private))
    # The API's way to choose a model: backbone, weights, comma-separated frozen groups, BatchNorm option.
    api_in = [gr.Textbox(visible=False), gr.Textbox(visible=False), gr.Textbox(visible=False),
              gr.Checkbox(visible=False)]
    gr.Button(visible=False).click(choose_model, [session_state, *api_in], desc_out, api_name="choose_model")
    described.append(train_bn.input(describe, desc_in, desc_out, **private))
    return ModelTab(backbone, weights, preset, frozen, choice_in, choice_out, desc_in, desc_out, described,
                    plan_table)
