"""The Model tab's *Which source?*: candidate sources ranked on the loaded data before training
(tlcore.studies.rank: LogME, LEEP, 5-NN accuracy from one feature pass), as a table and a sentence."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from ..api import BUNDLED_MNIST, rank
from ..errors import TLCoreError
from ..events import stream
from . import jobs
from .session import Session
from .text import escape

# The sources the app can offer offline: ImageNet's photo model, the bundled MNIST model, random weights.
CANDIDATES = {"EfficientNet-Lite0, ImageNet": ("efficientnet_lite0", "imagenet"),
              "LeNet-5 from MNIST (bundled)": ("lenet5", str(BUNDLED_MNIST)),
              "EfficientNet-Lite0, random weights": ("efficientnet_lite0", "none"),
              "LeNet-5, random weights": ("lenet5", "none")}
PER_CLASS = 50  # images per class the scores see here: a minute for four candidates on photos
COLUMNS = ["candidate", "LogME", "LEEP", "5-NN accuracy", "seconds"]


def _table(ranking) -> pd.DataFrame:
    names = {v: k for k, v in CANDIDATES.items()}
    return pd.DataFrame([{"candidate": names.get((c.backbone, c.weights), f"{c.backbone} ({c.weights})"),
                          "LogME": round(c.logme, 4), "LEEP": "" if c.leep is None else round(c.leep, 4),
                          "5-NN accuracy": round(c.knn_accuracy, 4), "seconds": round(c.seconds, 1)}
                         for c in ranking.candidates], columns=COLUMNS)


@jobs.job("ranking", refused=lambda why: (gr.skip(), f"**Not started:** {escape(why)}"),
          waiting=lambda place: (gr.skip(), jobs.WAITING.format(place)))
def run_rank(session: Session, chosen: list[str]):
    """Stream (table, status): which candidate is being scored, then the ranking and its sentence."""
    if session.dataset is None:
        yield gr.skip(), "Load a dataset on the Data tab first."
        return
    try:
        if not isinstance(chosen, list) or len(chosen) < 2 or any(c not in CANDIDATES for c in chosen):
            raise TLCoreError(f"Tick at least 2 of: {', '.join(CANDIDATES)}.")
    except TLCoreError as e:
        yield gr.skip(), f"**Not started:** {escape(e)}"
        return
    data, stop = session.dataset, session.stop

    def work(sink):
        return rank(data, [CANDIDATES[c] for c in chosen], per_class=PER_CLASS, stop=stop,
                    say=lambda line: sink(("line", line)))

    for kind, payload in stream(work):
        if kind == "line":
            yield gr.skip(), f"*Scoring {escape(payload)}…*"
        elif kind == "error":
            yield gr.skip(), f"**Not finished:** {payload}"
            return
        elif kind == "result":
            yield _table(payload), (f"**{escape(payload.sentence())}** Scored on {payload.images:,} training images "
                                    f"({PER_CLASS} per class at most), before any training. No score is reliable on "
                                    f"every dataset: the Compare tab's curve trains them for real.")


def build(session_state: gr.State) -> None:
    with gr.Accordion("Which source? Rank candidates on this data before training", open=False,
                      elem_id="rank-panel"):
        chosen = gr.CheckboxGroup(list(CANDIDATES), value=list(CANDIDATES), label="Candidates",
                                  elem_id="rank-candidates")
        go = gr.Button("Rank them", elem_id="rank-go")
        status = gr.Markdown(elem_id="rank-status")
        table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="rank-table")
    jobs.wire(go.click, run_rank, [session_state, chosen], [table, status], api_name="rank")
