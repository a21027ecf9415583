"""Lesson tab: transfer learning in seven steps, a button each, every sentence from this run's numbers.

A walkthrough over :class:`tlcore.api.LessonRun`: each step's button runs the real engine (the
steps before it first, if they have not run) and shows what it measured beside the sentence the
engine wrote from those numbers. Only the introductions, which say what a step is about to do,
are written here; what a step *found* never is.
"""
from __future__ import annotations

from typing import NamedTuple

import gradio as gr

from ..api import (
    LESSON_STEPS, LessonRun, curve_figure, feature_space_figure, forgetting_figure, overlay_figure, panels, to_display
)
from ..events import stream
from . import jobs
from .session import Session
from .text import escape

# What each step is about to do (what it found is the engine's sentence, shown after it ran).
INTRO = (
    "A network that already learned something: the bundled LeNet-5, trained on MNIST's handwritten digits. "
    "How well does it read its own task?",
    "A new, small task: scikit-learn's 8x8 digits with only **5 images per class**. The same network trains "
    "every layer twice: once starting from the MNIST weights, once from random weights.",
    "With more data, scratch learns too. The same two recipes at more images per class (as many counts as "
    "about a minute allows on this machine): where does scratch catch up?",
    "Fine-tuning changes the body. Does the network still read MNIST afterwards? Three fine-tunes strong "
    "enough to show it: plain, with L2-SP (pulled back towards the source weights) and with LwF (asked to "
    "keep the source's answers).",
    "Why it works: every digits test image as a point, placed by the body's features (PCA to 2-D), in the "
    "MNIST body before any training on digits and in step 4's fine-tuned body. The 5-NN accuracy says how "
    "well the classes separate (the sentence adds random weights' for comparison).",
    "Labels are the expensive part. Keep the labels of only 1 or 5 digits per class and hide the rest: can the "
    "MNIST body's features label those (label spreading over their nearest neighbours), and does a linear probe "
    "trained on them too beat the probe on the labelled few alone?",
    "Your turn: your own photos on the Data tab, or your own handwriting on the Draw tab.",
)
VISUAL = ("gallery", "plot", "plot", "plot", "plot", "plot", None)  # what each step shows beside its sentence
N_VISUALS = sum(v is not None for v in VISUAL)  # the outputs: every visual, then every sentence
STOPPED = "Stopped: the steps that finished are kept; press the button again to go on."


class LessonTab(NamedTuple):
    to_data: gr.Button
    to_draw: gr.Button
    outputs: list  # every step's visual, then every step's sentence (what ``restore`` fills)


def restore(session: Session) -> list:
    """A reloaded page shows the steps this session has run."""
    if session.lesson is None:
        return [gr.skip()] * (N_VISUALS + len(LESSON_STEPS))
    return _panels(session.lesson)


def _source_gallery(lesson: LessonRun):
    images, predicted, labels = lesson.done["source examples"]
    return [(img, f"read as {int(p)}" + ("" if int(p) == int(t) else f" (is {int(t)})"))
            for img, p, t in zip(to_display(images), predicted, labels)]


def _duel_chart(lesson: LessonRun):
    duel = lesson.done["duel"]
    return overlay_figure({"from MNIST": duel.transfer.history, "from scratch": duel.scratch.history},
                          title="Validation accuracy at 5 images per class")


def _curve_chart(lesson: LessonRun):
    c = lesson.done["curve"]
    return curve_figure(c.results(), c.n_classes, title="Test accuracy against images per class")


def _forgetting_chart(lesson: LessonRun):
    n = lesson.steps[3].numbers
    return forgetting_figure(n["source_before"], n["after"], n["target_test"])


def _feature_chart(lesson: LessonRun):
    space, digits = lesson.done["feature space"], lesson.ctx.digits
    return feature_space_figure(panels(space), digits.test.labels.numpy(), list(digits.classes))


def _unlabelled_chart(lesson: LessonRun):
    c = lesson.done["unlabelled"]
    return curve_figure(c.results(), c.n_classes, title="The probe alone, and with the images nobody labelled")


SHOW = (_source_gallery, _duel_chart, _curve_chart, _forgetting_chart, _feature_chart, _unlabelled_chart, None)


def _panels(lesson: LessonRun) -> list:
    """Every step's visual and sentence: what has run is shown, the rest left as it is."""
    visuals, texts = [], []
    for i, (kind, show) in enumerate(zip(VISUAL, SHOW)):
        ran = i < len(lesson.steps)
        if kind is not None:
            visuals.append(show(lesson) if ran else gr.skip())
        texts.append(_said(lesson.steps[i]) if ran else gr.skip())
    return [*visuals, *texts]


def _said(step) -> str:
    return f"{escape(step.conclusion)}\n\n<small>Measured just now in {step.seconds:.0f} s.</small>"


def _progress(k: int, lines: list[str]) -> list:
    """Only step ``k``'s sentence changes while it runs: the last few progress lines."""
    shown = "  \n".join(escape(line.strip()) for line in lines[-4:])
    return _message(k, f"*Running…*  \n{shown}")


def _message(k: int, text: str) -> list:
    """Step ``k``'s sentence becomes ``text``; every other output stays as it is."""
    out = [gr.skip()] * (N_VISUALS + len(LESSON_STEPS))
    out[N_VISUALS + k - 1] = text
    return out


def _refused(k: int):
    return lambda why: _message(k, f"**Not started:** {escape(why)}")


def _waiting(k: int):
    return lambda place: _message(k, jobs.WAITING.format(place))


def step_job(k: int):
    """The job behind step ``k``'s button."""

    @jobs.job("lesson", refused=_refused(k), waiting=_waiting(k))
    def run_step(session: Session):
        lesson = session.lesson = session.lesson or LessonRun()
        lines: list[str] = []

        def work(sink):
            lesson.use(stop=session.stop, progress=sink)
            return lesson.step(k)

        for item in stream(work):
            if isinstance(item, str):
                lines.append(item)
                yield _progress(k, lines)
            elif item[0] == "error":
                yield _message(k, f"**Not finished:** {escape(item[1])}")
                return
            else:
                step = item[1]
        shown = _panels(lesson)
        if step is None:  # stopped: the steps that finished are shown, this one says so
            shown[-len(LESSON_STEPS) + k - 1] = STOPPED
        yield shown
    run_step.__name__ = f"lesson_step_{k}"
    return run_step


def build(session_state: gr.State) -> LessonTab:
    gr.Markdown("Transfer learning in seven steps. Each button runs the real thing on this machine, and the "
                "sentence under it is written from what it measured (each step says how long it took).")
    visuals, texts, buttons, stops, nexts = [], [], [], [], []
    with gr.Walkthrough(selected=1, elem_id="lesson") as walk:
        for k, (name, intro, kind) in enumerate(zip(LESSON_STEPS, INTRO, VISUAL), start=1):
            with gr.Step(f"{k}. {name.capitalize()}", id=k):
                gr.Markdown(intro)
                with gr.Row():
                    buttons.append(gr.Button(f"Run step {k}" if k < len(LESSON_STEPS) else "What did we find?",
                                             variant="primary", elem_id=f"lesson-go-{k}"))
                    stops.append(gr.Button("Stop", variant="stop", elem_id=f"lesson-stop-{k}", scale=0, min_width=100))
                    if k < len(LESSON_STEPS):
                        nexts.append(gr.Button(f"Next: {LESSON_STEPS[k]} →", elem_id=f"lesson-next-{k}"))
                    else:
                        to_data = gr.Button("Your photos: the Data tab →", elem_id="lesson-to-data")
                        to_draw = gr.Button("Your handwriting: the Draw tab →", elem_id="lesson-to-draw")
                texts.append(gr.Markdown(elem_id=f"lesson-said-{k}"))
                if kind == "gallery":
                    visuals.append(gr.Gallery(label="Some of its MNIST test digits", columns=10, height=150,
                                              elem_id=f"lesson-show-{k}"))
                elif kind == "plot":
                    visuals.append(gr.Plot(elem_id=f"lesson-show-{k}", show_label=False))
    for k, (go, stop) in enumerate(zip(buttons, stops), start=1):
        jobs.wire(go.click, step_job(k), [session_state], [*visuals, *texts], api_name=f"lesson_step_{k}")
        jobs.wire_stop(stop, session_state, api_name=f"lesson_stop_{k}", api_visibility="private")
    for k, nxt in enumerate(nexts, start=1):
        nxt.click(lambda k=k: gr.Walkthrough(selected=k + 1), None, walk, api_visibility="private")
    return LessonTab(to_data, to_draw, [*visuals, *texts])
