"""The Gradio studio. The only package that imports gradio; it talks to tlcore through its API.

Layout: functions live in one module per tab; here the tabs are assembled and wired to each
other (a finished run appears in Evaluate, Draw and Model's weights), and the queue is set:
a bounded waiting line, prediction endpoints that never wait behind training, and the jobs'
own line (jobs.Line: one at a time per CPU machine, two on a GPU, each seeing its place).
Fairness between sessions: each has at most one job (a training, a sweep, a comparison, a curve,
a teaching) waiting or running (jobs.admit, Gradio's validator, refuses a second as it arrives)
and one prediction running with a few waiting (fair.PerSession).
"""
from __future__ import annotations

import os

import gradio as gr

from . import capture_tab, compare_tab, data_tab, draw_tab, evaluate_tab, jobs, keep, leftovers, lang, lesson_tab, model_tab, speak, train_tab
from .session import Session, close_session, delete_session

TITLE = "Transfer Learning Studio"
MAX_QUEUE = 32
# Caps on what a visitor can send: uploads (Gradio refuses bigger files before they reach us;
# zips are then checked member by member) and how long Gradio keeps uploaded files.
MAX_UPLOAD = "512mb"
# The footer's links, without Gradio's "Runs" (its own raw run history, easily taken for this
# app's runs, which live in the Compare tab).
FOOTER = ["api", "gradio", "settings"]
UPLOAD_CACHE = (600, 3600)  # every 10 minutes, delete uploads older than an hour
# Gradio keeps a record of every session it has seen (here ~0.4 MB each: its own copy of every
# component's config, measured by benchmarks/soak.py), closed or not, until this many more
# recently used ones push it out; its default, 10,000, would be ~4 GB after a busy day.
# A session pushed out is one idle while a thousand others were used; its folder goes with it.
STATE_SESSIONS = int(os.environ.get("TLCORE_STATE_SESSIONS", "1000"))


def _after_run(session: Session):
    """A finished run becomes selectable on Draw (the bundled model stays the default there)."""
    return gr.update(choices=draw_tab.model_choices(session))


def _restored(session: Session):
    """Every view of the session's work that no tab's opening refreshes (Compare's lists and
    Draw's models are read again when their tab opens), as the session has it now."""
    return [_run_names(session), *draw_tab.drawings_view(session), *compare_tab.restore(session),
            *lesson_tab.restore(session)]


def _closed(request: gr.Request):
    close_session(request)
    lang.forget(request)


def _run_names(session: Session):
    return gr.update(choices=list(session.runs))


COMPARE, TRAIN, DATA, DRAW = "compare", "train", "data", "draw"


def _retrain(event, session: gr.State, training: train_tab.TrainTab):
    private = dict(api_visibility="private")
    event.then(train_tab.body_mult, session, training.inputs["body_lr_mult"], **private) \
        .then(train_tab.cleared, session, training.view, **private)


def _schedule(session: gr.State, model: model_tab.ModelTab, training: train_tab.TrainTab, described: list) -> None:
    """The Model tab's schedule follows the model (each event in ``described`` re-described it)
    and the Train tab's epochs, rates and unfreezing."""
    private = dict(api_visibility="private")
    inputs = [session, *(training.inputs[k] for k in model_tab.SCHEDULE_INPUTS)]
    for comp in inputs[1:]:
        comp.change(model_tab.schedule, inputs, model.schedule, **private)
    for event in described:
        event.then(model_tab.schedule, inputs, model.schedule, **private)


def _sweep() -> None:
    """What a killed server left in the temp folder (its sessions' folders) goes as the app starts."""
    folders = [p for p in leftovers.sweep() if p.name.startswith(leftovers.SESSION_PREFIX)]
    if folders:
        print(f"Removed {len(folders)} session folder(s) left in {folders[0].parent} by a server that "
              "was stopped without cleaning up.", flush=True)


def _links(tabs: gr.Tabs, links: list, lesson: lesson_tab.LessonTab) -> None:
    """Buttons that open another tab: Train's and Evaluate's to Compare, the lesson's last step's."""
    private = dict(api_visibility="private")
    for link in links:
        link.click(_to_compare, None, tabs, **private)
    lesson.to_data.click(lambda: gr.Tabs(selected=DATA), None, tabs, **private)
    lesson.to_draw.click(lambda: gr.Tabs(selected=DRAW), None, tabs, **private)


def _first_paint(spoken: list, session: gr.State, key, data, model, shows_work: list) -> None:
    """After the page's words are set in its language (the one of ``spoken`` that succeeds,
    speak.wire), a reload finds this browser's session again (keep.resume), then the offline
    default dataset and model are shown, so the app is useful at once (the dataset summary changing
    then re-describes the model and suggests settings), then the session's work (runs, views, lesson)."""
    private = dict(api_visibility="private")
    for event in spoken:
        event.success(keep.resume, [session, key], [session, key], **private) \
            .then(data_tab.load, data.inputs, data.outputs, **private) \
            .then(model_tab.on_backbone, model.choice_inputs, model.choice_outputs, **private) \
            .then(_restored, session, shows_work, **private)


def _suggestions(session: gr.State, data, model: model_tab.ModelTab, training: train_tab.TrainTab) -> None:
    private = dict(api_visibility="private")
    # Another model (backbone, weights, freezing) wants other settings: a frozen body's head
    # trains with AdamW, a from-scratch LeNet with SGD at 0.1 (tlcore.training.suggest).
    # Either change also clears the Train tab's charts of a run on other data or another model,
    # and greys the body's multiplier out when the body is frozen.
    for event in model.changed:
        _retrain(event.then(train_tab.resuggest, session, training.suggested, **private), session, training)
    # A new dataset changes the class count: re-describe the model, re-suggest the settings.
    redescribed = data.summary.change(model_tab.describe, model.describe_inputs, model.describe_outputs, **private)
    _retrain(redescribed.then(train_tab.resuggest, session, training.suggested, **private), session, training)
    _schedule(session, model, training, [*model.changed, redescribed])


def _header():
    """The title, what the studio is for, and the language switch (speak.build) beside them."""
    with gr.Row(equal_height=True):
        gr.Markdown(f"# {TITLE}\nDoes a pretrained backbone help on your data, and how much? "
                    "New here? Take the **Lesson**. Then **Data** (or **Capture** your own) → **Model** → "
                    "**Train** → **Evaluate** → **Compare**, or just **Draw** a digit.")
        return speak.build()


def _to_compare():
    return gr.Tabs(selected=COMPARE)


def build_app() -> gr.Blocks:
    private = dict(api_visibility="private")
    _sweep()
    with gr.Blocks(title=TITLE, delete_cache=UPLOAD_CACHE) as demo:
        switch, kept_language = _header()
        session = gr.State(Session(), delete_callback=delete_session)
        key, opened = keep.build(session)
        runs = gr.Dropdown([], label="Run", render=False, allow_custom_value=False)
        with gr.Tabs() as tabs:
            with gr.Tab("Lesson", id="lesson"):
                lesson = lesson_tab.build(session)
            with gr.Tab("Data", id=DATA):
                data = data_tab.build(session)
            with gr.Tab("Capture", id="capture"):
                capture = capture_tab.build(session)
            with gr.Tab("Model"):
                model = model_tab.build(session)
            with gr.Tab("Train", id=TRAIN):
                training = train_tab.build(session, runs)
                links = [gr.Button("Does transfer help here? Compare with training from scratch →", size="sm")]
            with gr.Tab("Evaluate"):
                evaluation = evaluate_tab.build(session, runs)
                links.append(gr.Button("Set this run beside others, or against scratch →", size="sm"))
            with gr.Tab("Compare", id=COMPARE) as compare_item:
                compare = compare_tab.build(session)
            with gr.Tab("Draw", id=DRAW) as draw_tab_item:
                draw = draw_tab.build(session)
        _links(tabs, links, lesson)
        compare_item.select(compare_tab.refresh, session, compare.lists, **private)
        draw_tab_item.select(None, js=draw_tab.SELECT_BRUSH, **private)
        draw_tab_item.select(draw_tab.refresh_models, [session, draw.model], draw.model, **private)
        # A finished run (trained, taught, or one of a comparison) appears in Evaluate, Draw and as
        # a source model on the Model tab.
        # Continue a run (Evaluate tab): it trains on the Train tab, with its live charts.
        to_train = evaluation.continue_button.click(lambda: gr.Tabs(selected=TRAIN), None, tabs, **private)
        continued = jobs.wire(to_train.then, train_tab.continue_training, [session, runs, evaluation.more_epochs],
                              [*training.view, runs], api_name="continue_training")
        # (Training and continuing set the run list themselves; teaching and a duel do not.)
        named = [draw.taught.then(_run_names, session, runs, **private),
                 compare.duel_event.then(_run_names, session, runs, **private)]
        for event in (training.train_event, continued, *named):
            event.then(_after_run, session, draw.model, **private) \
                .then(model_tab.refresh_weights, [session, model.backbone], model.weights, **private)
        # First paint (the kept session, the default data and model) and an opened session.
        shows_work = [runs, *draw.drawings, *compare.restored, *lesson.outputs]  # (Draw's models: on its tab)
        _first_paint(speak.wire(demo, switch, kept_language), session, key, data, model, shows_work)
        opened.then(_restored, session, shows_work, **private) \
            .then(model_tab.refresh_weights, [session, model.backbone], model.weights, **private)
        _suggestions(session, data, model, training)
        capture.use.then(data_tab.shown, session, data.outputs, **private)  # the frames are the dataset now
        # Photos uploaded: the suggested model, in a click (its choice re-describes and re-suggests).
        data.use_model.click(model_tab.use_suggested, session, model.backbone, **private) \
            .then(lambda: (gr.update(visible=False), gr.update(visible=False)), None, [data.hint, data.use_model],
                  **private)
        # A closed tab (or API client) ends its session at once: its run stops, its folder goes.
        demo.unload(_closed)
    speak.wrap(demo)  # (last: every event's outputs)
    demo.queue(max_size=MAX_QUEUE, default_concurrency_limit=4)
    _quiet_queue(demo)
    return demo


def _quiet_queue(demo: gr.Blocks) -> None:
    """Gradio's queue looks for work every millisecond and for progress every ten, all the time:
    an idle studio took 5.8% of a core (a hosted Space, a classroom server left open, the test
    suite's app). Every 20 ms and 100 ms (close to Gradio's own on Windows: 50 and 100) it takes
    1.3-1.6% (benchmarks/idle.py); an event waits at most 20 ms more to start, below what a click
    can feel. Private attributes of Gradio's Queue: where a version has not them, its own values stay."""
    queue = getattr(demo, "_queue", None)
    for name, seconds in (("sleep_when_free", 0.02), ("progress_update_sleep_when_free", 0.1)):
        if isinstance(getattr(queue, name, None), (int, float)):
            setattr(queue, name, seconds)
