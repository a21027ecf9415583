"""Compare tab: does transfer help on this data, and how much?

Three views on the engine's :mod:`tlcore.studies.compare`: transfer vs scratch (one recipe from the
source weights and from random ones, both validation curves in one chart and the answer in
words), the data-efficiency curve (test accuracy against samples per class for scratch, linear
probe and fine-tune, over seeds), and every run of the session and every saved run side by
side. The tab draws and wires; the engine trains.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import pandas as pd

from ..api import (
    APP_PHOTO_BUDGET_S, BUDGET_RULE, BUNDLED_MNIST, LINE_NAMES, SEMI, Curve, curve, curve_figure, list_runs, overlay_figure, parse_shots, Point, Progress,
    read_metrics, runs_dir, saved_run, source_name, table_rows, transfer_vs_scratch
)
from ..config import SEMI_METHODS, STRATEGIES
from ..errors import TLCoreError
from ..events import Recorder, stream
from . import jobs
from .session import SAVED, RunRecord, Session
from .text import escape
from .payload import typed

DEFAULT_SHOTS = "1, 2, 5, 10, 20, 50, all"


class CompareTab(NamedTuple):
    duel_event: object  # transfer vs scratch's click: new runs exist when it ends
    runs: gr.CheckboxGroup  # the runs overlaid
    table: gr.Dataframe
    lists: list  # what ``refresh`` fills: the table, the overlay choices, the delete choices
    restored: list  # what ``restore`` fills: the duel's chart and words, the curve's chart, table, status


def source_of(session: Session) -> tuple[str, str, list[str] | None]:
    """(backbone, source weights, frozen groups) to compare: the Model tab's choice when it has source
    weights; else, for LeNet-5, the bundled MNIST model fine-tuned whole (the studio's first story)."""
    if session.weights != "none":
        return session.backbone, session.weights, list(session.frozen)
    if session.backbone == "lenet5":
        return "lenet5", str(BUNDLED_MNIST), []
    raise TLCoreError("Choose source weights on the Model tab (ImageNet or a saved run): scratch needs something "
                      "to be compared with.")


# -- transfer vs scratch --------------------------------------------------------------------------
@jobs.job("comparison", refused=lambda why: (gr.skip(), f"**Not started:** {escape(why)}", gr.skip()),
          waiting=lambda place: (gr.skip(), jobs.WAITING.format(place), gr.skip()))
@typed
def run_duel(session: Session, keep_freezing: bool = False):
    """Stream (chart, summary, runs to overlay): both runs' validation accuracy as they go, then the answer.
    Like with like unless ``keep_freezing``: every layer trains in both arms (the Model tab's frozen
    groups otherwise stay frozen in the transfer arm, and the answer says so)."""
    if session.dataset is None:
        yield gr.skip(), "Load a dataset on the Data tab first.", gr.skip()
        return
    try:
        backbone, weights, frozen = source_of(session)
    except TLCoreError as e:
        yield gr.skip(), f"**Not started:** {escape(e)}", gr.skip()
        return
    frozen = frozen if keep_freezing else None
    stop, curves, status = session.stop, {}, "Training…"
    label = {"transfer": f"from {source_name(weights)}", "scratch": "from scratch"}
    names = {run: session.runs.new_name(f"{run}-{session.dataset.name}-{backbone.replace(':', '-')}")
             for run in label}
    data = session.dataset

    def work(sink):
        return transfer_vs_scratch(data, backbone=backbone, weights=weights, frozen=frozen or None, preset="full",
                                   stop=stop, out=lambda run: session.folder / names[run], progress=sink,
                                   budget_s=photo_budget(data),
                                   callbacks=lambda run: [Recorder(sink=lambda ev: sink((run, *ev)))])

    drawn = 0.0
    for item in stream(work):
        if isinstance(item, Progress):  # before len(): a Progress is not a tuple
            status = f"*{escape(item.text[:1].upper() + item.text[1:])}…*" if not item.done else status
            yield gr.skip(), status, gr.skip()
        elif len(item) == 3 and item[1] == "epoch_end":
            curves.setdefault(label[item[0]], []).append(item[2])
            if time.monotonic() - drawn >= jobs.EPOCH_EVERY_S:  # the finished chart below has every epoch
                drawn = time.monotonic()
                yield overlay_figure(curves, title="Validation accuracy, transfer vs scratch"), status, gr.skip()
        elif item[0] in ("result", "error"):
            outcome = item
    if outcome[0] == "error":
        yield gr.skip(), f"**Not finished:** {outcome[1]}", gr.skip()
        return
    duel = outcome[1]
    for run, r in (("transfer", duel.transfer), ("scratch", duel.scratch)):
        if r is not None and r.history:  # both become runs of the session: Evaluate, Draw, the table
            session.add_run(RunRecord(names[run], r, data, session.folder / names[run]))
    session.duel_view = {"curves": curves, "summary": duel.summary()}
    yield *_duel_shown(session.duel_view), gr.update(choices=run_choices(session))


def _duel_shown(view: dict) -> tuple:
    return overlay_figure(view["curves"], title="Validation accuracy, transfer vs scratch"), view["summary"]


# -- the data-efficiency curve --------------------------------------------------------------------
def _results_table(points: list[Point], n_classes: int) -> tuple[object, pd.DataFrame]:
    c = Curve("", "", "", n_classes, points)
    rows = c.results()
    semi = any(r["strategy"] == SEMI for r in rows)
    table = pd.DataFrame([{"per class": r["shots"] or "all", "strategy": LINE_NAMES.get(r["strategy"], r["strategy"]),
                           "test accuracy": r["accuracy"], "± (seeds)": r["std"], "seeds": r["seeds"],
                           "s a run": r["seconds"], **(_unlabelled_cells(r) if semi else {})} for r in rows])
    return curve_figure(rows, n_classes), table.round(4)


def _unlabelled_cells(row: dict) -> dict:
    """The semi-supervised columns: how many unlabelled images a row used and how many of their labels are right."""
    right = row.get("pseudo_label_accuracy")
    return {"unlabelled used": "" if row["strategy"] != SEMI else f"{row['unlabelled_used']:,}",
            "their labels right": "" if right is None else f"{right:.0%}"}


def photo_budget(data) -> float | None:
    """A study of photos fits a class period (the studies' budget rule); digits run as suggested."""
    return APP_PHOTO_BUDGET_S if data.channels == 3 else None


@jobs.job("curve", refused=lambda why: (gr.skip(), gr.skip(), f"**Not started:** {escape(why)}"),
          waiting=lambda place: (gr.skip(), gr.skip(), jobs.WAITING.format(place)))
@typed
def run_curve(session: Session, shots_text: str, seeds, strategies: list[str], semi_method: str = SEMI_METHODS[0]):
    """Stream (chart, table, status) as each point of the curve finishes; Stop keeps what is done."""
    if session.dataset is None:
        yield gr.skip(), gr.skip(), "Load a dataset on the Data tab first."
        return
    try:
        backbone, weights, _ = source_of(session)
        shots = parse_shots(shots_text)
        seeds = int(seeds) if float(seeds or 0).is_integer() else seeds
    except (TLCoreError, ValueError, TypeError) as e:
        yield gr.skip(), gr.skip(), f"**Not started:** {escape(e)}"
        return
    stop, data, points = session.stop, session.dataset, []

    def work(sink):
        return curve(data, backbone=backbone, weights=weights, shots=shots, seeds=seeds, strategies=strategies,
                     sink=sink, stop=stop, progress=sink, semi_method=semi_method, budget_s=photo_budget(data))

    where, sentence = "Starting…", ""
    for item in stream(work):
        if isinstance(item, Progress):
            where, sentence = (where, item.sentence) if item.done else (f"{item.text[:1].upper()}{item.text[1:]}…", "")
            yield gr.skip(), gr.skip(), f"*{escape(where)}*"
        elif isinstance(item, Point):
            points.append(item)
            yield *_results_table(points, len(data.classes)), f"*{escape(where)}* {len(points)} runs done."
        elif item[0] == "error":
            yield gr.skip(), gr.skip(), f"**Not finished:** {item[1]}"
            return
        elif item[0] == "result":
            result = item[1]
    said = "Stopped: the points above are the ones that finished. " if result.stopped else ""
    passes = f" The linear probes shared one feature pass ({result.feature_pass_seconds:.1f} s)." if \
        result.feature_pass_seconds else ""
    found = f"**{escape(sentence)}** " if sentence else ""
    session.curve_view = {"points": list(result.points), "n_classes": len(data.classes),
                          "status": f"{found}{said}{BUDGET_RULE}{passes}"}
    yield *_results_table(result.points, len(data.classes)), session.curve_view["status"]


# -- runs side by side ----------------------------------------------------------------------------
def run_choices(session: Session) -> list[str]:
    """This session's runs, then the runs saved in the runs folder (newest first)."""
    return [*session.runs, *(SAVED + f.name for f in list_runs(runs_dir()))]


def _folder(session: Session, choice: str) -> Path:
    if choice in session.runs:
        return session.runs[choice].folder
    if choice.startswith(SAVED):
        return saved_run(runs_dir(), choice[len(SAVED):])
    raise TLCoreError(f"Unknown run {choice!r}.")


COLUMNS = ["run", "what", "dataset", "backbone", "strategy", "regularizer", "epochs", "lr", "best val acc", "test acc",
           "source acc after", "seconds", "weights", "frozen", "batch", "optimizer", "images/s"]


def runs_table(session: Session, choices: list[str] | None = None) -> pd.DataFrame:
    """Every run of the session and every saved run (``choices``, when listed already), a line each,
    "what" naming each by what sets it apart from the others."""
    folders = {}
    for choice in run_choices(session) if choices is None else choices:
        try:
            folders[choice] = _folder(session, choice)
        except TLCoreError:  # deleted meanwhile: not offered
            continue
    return pd.DataFrame(table_rows(folders), columns=COLUMNS).round(4)


@typed
def overlay(session: Session, chosen: list[str]):
    """The chosen runs' validation accuracy per epoch, in one chart."""
    if len(chosen or []) < 2:
        return None, "Tick two or more runs to set their curves side by side."
    histories = {}
    for choice in chosen:
        try:
            histories[choice] = read_metrics(_folder(session, choice)).get("history") or []
        except TLCoreError as e:
            return gr.skip(), str(e)
    return overlay_figure(histories), f"{len(histories)} runs: validation accuracy after each epoch."


@typed
def delete_run(session: Session, choice: str | None):
    """Delete a run of this session (saved runs are left to whoever saved them)."""
    if not choice or choice not in session.runs:
        msg = ("Only this session's runs can be deleted here; a saved run is a folder under the runs folder."
               if choice else "Choose a run to delete.")
        return gr.skip(), gr.skip(), gr.skip(), msg
    session.remove_run(choice)
    choices = run_choices(session)
    return (runs_table(session, choices), gr.update(choices=choices, value=[]),
            gr.update(choices=list(session.runs), value=None), f"Deleted run `{choice}`.")


def restore(session: Session) -> list:
    """What a reloaded page shows of the session: the last comparison and curve. (The lists read
    the runs folder: they are filled when the tab is opened, not on every page load.)"""
    duel, c = session.duel_view, session.curve_view
    return [*(_duel_shown(duel) if duel else (gr.skip(), gr.skip())),
            *(_results_table(c["points"], c["n_classes"]) if c else (gr.skip(), gr.skip())),
            c["status"] if c else gr.skip()]


def refresh(session: Session):
    """(table, overlay choices, delete choices) as the session and the runs folder are now."""
    choices = run_choices(session)  # the runs folder read once for the table and the overlay
    return runs_table(session, choices), gr.update(choices=choices), gr.update(choices=list(session.runs))


UNLABELLED_LINE = "+ the unlabelled images"  # the semi-supervised strategy, as the Compare tab offers it


def build(session_state: gr.State) -> CompareTab:
    gr.Markdown("Does a pretrained body help on this data, and by how much? Every run here gets the settings "
                "suggested for it and for this much data, by one budget rule, so no line is an undertrained "
                "straw man.")
    with gr.Group():
        gr.Markdown("### Transfer vs scratch\nThe Model tab's source weights (for LeNet-5 without any: the "
                    "bundled MNIST model) against the same network from random weights. Like with like: every "
                    "layer trains in both, unless you keep the Model tab's freezing for the transfer run.")
        keep = gr.Checkbox(False, label="Keep the Model tab's frozen layers frozen in the transfer run",
                           elem_id="duel-keep-frozen")
        with gr.Row():
            duel_btn = gr.Button("Transfer vs scratch", variant="primary", elem_id="duel-go")
            duel_stop = gr.Button("Stop", variant="stop")
        duel_plot = gr.Plot(label="Validation accuracy", elem_id="duel-chart")
        duel_text = gr.Markdown(elem_id="duel-summary")
    with gr.Group():
        gr.Markdown("### Data-efficiency curve\nTest accuracy against training images per class: from scratch, "
                    "as a linear probe and as a full fine-tune, over several seeds (the spread shaded).")
        with gr.Row():
            shots = gr.Textbox(DEFAULT_SHOTS, label="Samples per class", elem_id="curve-shots")
            seeds = gr.Number(3, step=1, label="Seeds", elem_id="curve-seeds")
            strategies = gr.CheckboxGroup([*STRATEGIES, (UNLABELLED_LINE, SEMI)], value=list(STRATEGIES),
                                          label="Strategies", elem_id="curve-strategies",
                                          info="+ the unlabelled images: the linear probe, plus the rest of the "
                                               "training images with their labels hidden, labelled by the method "
                                               "beside")
            semi_method = gr.Dropdown(list(SEMI_METHODS), value=SEMI_METHODS[0], label="Labelling the unlabelled images",
                                      elem_id="curve-semi-method")
        with gr.Row():
            curve_btn = gr.Button("Run the curve", variant="primary", elem_id="curve-go")
            curve_stop = gr.Button("Stop (keeps the finished points)", variant="stop")
        curve_plot = gr.Plot(label="Data efficiency", elem_id="curve-chart")
        curve_status = gr.Markdown(BUDGET_RULE, elem_id="curve-status")
        curve_table = gr.Dataframe(headers=["per class", "strategy", "test accuracy", "± (seeds)", "seeds", "s a run"],
                                   label="Mean over seeds", interactive=False)
    with gr.Group():
        gr.Markdown("### Runs side by side\nEvery run of this session and every saved run.")
        table = gr.Dataframe(headers=COLUMNS, label="Runs", interactive=False, elem_id="runs-table", wrap=True)
        chosen = gr.CheckboxGroup([], label="Overlay their validation curves (tick two or more)", elem_id="overlay-runs")
        overlay_plot = gr.Plot(label="Overlay", elem_id="overlay-chart")
        overlay_text = gr.Markdown()
        with gr.Row():
            to_delete = gr.Dropdown([], label="Delete a run of this session", elem_id="delete-run")
            delete_btn = gr.Button("Delete", elem_id="delete-go")
            refresh_btn = gr.Button("Refresh the list")
        delete_text = gr.Markdown()
    lists = [table, chosen, to_delete]
    duel_event = jobs.wire(duel_btn.click, run_duel, [session_state, keep], [duel_plot, duel_text, chosen],
                           api_name="transfer_vs_scratch")
    duel_event.then(refresh, session_state, lists, api_visibility="private")
    for btn in (duel_stop, curve_stop):
        jobs.wire_stop(btn, session_state, api_visibility="private")
    jobs.wire(curve_btn.click, run_curve, [session_state, shots, seeds, strategies, semi_method],
              [curve_plot, curve_table, curve_status], api_name="curve")
    chosen.change(overlay, [session_state, chosen], [overlay_plot, overlay_text], api_visibility="private")
    delete_btn.click(delete_run, [session_state, to_delete], [*lists, delete_text], api_visibility="private")
    refresh_btn.click(refresh, session_state, lists, api_visibility="private")
    return CompareTab(duel_event, chosen, table, lists,
                      [duel_plot, duel_text, curve_plot, curve_table, curve_status])
