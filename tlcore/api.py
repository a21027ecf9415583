"""The engine's one face: everything a front end (the app in ``tlcore.ui``, the command line in
``tlcore.cli``) may ask of it. Front ends import the engine only through this module and the few
shared ones (``tlcore.config``, ``tlcore.events``, ``tlcore.errors``); an architecture test holds it.

The operations, by what a user asks:

- *what data, which model*: :func:`load_dataset`, :func:`load_run_data`, :func:`create_backbone`,
  the freezing presets, :func:`suggest` (the settings a model and this much data start from);
- *train it*: :func:`train` (with images nobody labelled: :func:`with_pool`, :func:`load_unlabelled`,
  :func:`with_pseudo_labels`), :func:`continue_run`, :func:`lr_find`, gradual unfreezing's plan;
- *how good is it*: :func:`load_run`, :func:`evaluate_run` (one device and precision rule for
  every front end), :func:`predict_probs`, the feature space, Grad-CAM, saliency, the figures;
- *take it elsewhere*: :func:`export_run`, the model card;
- *which source*: :func:`rank` (LogME, LEEP, 5-NN accuracy of each candidate's features), :func:`shift`
  (how far targets lie from the source);
- *studies of many runs*: :func:`transfer_vs_scratch`, :func:`curve` (both report :class:`Progress`),
  :func:`forgetting_demo`, :func:`teach`, :class:`Captured` (a class's own camera frames), and :func:`lesson` (six measured steps); :func:`run_name`
  says what sets a run apart.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import torch

from . import distributed
from .config import RunConfig
from .errors import TLCoreError
from .data import DATASETS, ImageData, Split, is_path, list_datasets, load_dataset, load_labelled
from .data.sketch import EmptySketch, sketch_batch, sketch_files
from .data.unlabelled import add_unlabelled, load_unlabelled, with_pool
from .device import describe_device, is_main_process, pick_device, run_autocast_dtype
from .insight.evaluate import Evaluation, evaluate, evaluate_probs
from .insight.feature_space import FOLDS, NEIGHBOURS, FeatureSpace, feature_space, panels
from .insight.gradcam import MIN_MAP_SIDE, NOT_CONV, TOO_SMALL, gradcam, heat_overlay, is_convolutional
from .insight.plots import (
    LINE_NAMES, PROJECTION_NAMES, class_count_figure, confusion_figure, curve_figure, enlarged, examples, feature_space_figure,
    ROC_HAIR, all_near_one, forgetting_figure, shift_figure, lr_find_figure, overlay_figure, probability_figure, roc_figure, to_display,
    training_figures
)
from .insight.predict import load_image_files, predict_files, predict_probs
from .insight.saliency import overlay, saliency
from .models import (
    BACKBONES, HEAD, NONE, TransferNet, architecture, create_backbone, describe_backbone, freeze, frozen_for_preset, list_backbones,
    preset_names, weights_choices
)
from .paths import BUNDLED_MNIST, BUNDLED_RUNS, runs_dir
from .preprocess import prepare
from .runs.atomic import atomic_write, discard, write_bytes
from .runs.card import CARD_FILE, card_beside
from .runs.bundle import Bundle, read_bundle, write_bundle
from .runs.checkpoints import list_runs, load_replay, load_run, replay_sample
from .runs.export import FORMATS, export_run
from .runs.folder import read_metrics, read_run_config, run_row, saved_run
from .runs.names import run_name, table_rows
from .studies.capture import MAX_CLASSES as MAX_CAPTURE_CLASSES
from .studies.capture import MAX_FRAMES, MAX_PER_CLASS, Captured, Fitted
from .studies.compare import TransferVsScratch, source_name, transfer_vs_scratch
from .studies.curve import BUDGET_RULE, SEMI, Curve, Point, check_curve, curve, parse_shots, transfer_gain
from .studies.forgetting import ForgettingDemo, forgetting_demo
from .studies.lesson import STEPS as LESSON_STEPS, Lesson, LessonRun, lesson
from .studies.progress import Progress
from .studies.rank import Ranking, parse_candidates, rank
from .studies.shift import GAIN_SHOTS, Shift, shift
from .studies.budget import APP_PHOTO_BUDGET_S, Fit, check_budget, fit_budget, fit_run
from .studies.teach import Drawings, teach
from .training.loop import load_run_data
from .training.lr_finder import lr_find
from .training.optim import group_rates
from .training.result import RunResult, Status, saved_result
from .training.resume import continuable, continue_run
from .training.state import LoopState
from .training.suggest import SUGGESTED, body_frozen, suggested, suggested_for, suggested_model
from .training.semi import with_pseudo_labels
from .training.train import train
from .training.unfreeze import plan as unfreeze_plan

__all__ = [
    "BACKBONES", "BUDGET_RULE", "NONE", "architecture", "BUNDLED_MNIST", "BUNDLED_RUNS", "Curve", "DATASETS", "Drawings", "EmptySketch",
    "Evaluation", "FORMATS", "FeatureSpace", "ForgettingDemo", "HEAD", "ImageData", "LESSON_STEPS", "Lesson",
    "LessonRun", "LoopState", "FOLDS", "NEIGHBOURS", "NOT_CONV", "TOO_SMALL", "MIN_MAP_SIDE", "PROJECTION_NAMES", "Point", "Progress", "RunConfig", "RunResult",
    "SUGGESTED", "Split", "Bundle", "read_bundle", "reopened_run", "saved_result", "write_bundle", "Status", "TransferNet", "TransferVsScratch", "atomic_write", "body_frozen",
    "CARD_FILE", "card_beside", "check_curve", "class_count_figure", "confusion_figure", "continuable", "continue_run",
    "create_backbone", "curve", "curve_figure", "describe_backbone", "describe_device", "discard",
    "distributed_run", "enlarged", "evaluate", "evaluate_probs", "evaluate_run", "examples", "export_run",
    "feature_space", "feature_space_figure", "forgetting_demo", "forgetting_figure", "freeze", "frozen_for_preset",
    "gradcam",
    "group_rates", "heat_overlay", "is_convolutional", "is_main_process", "is_path", "lesson", "list_backbones",
    "list_datasets", "list_runs", "load_dataset", "load_image_files", "load_labelled", "load_replay", "load_run",
    "load_run_data", "lr_find", "lr_find_figure", "overlay", "overlay_figure", "panels", "parse_shots",
    "pick_device", "predict_files", "predict_probs", "prepare", "preset_names", "probability_figure",
    "read_metrics", "read_run_config", "replay_sample", "roc_figure", "ROC_HAIR", "all_near_one", "run_name", "run_row", "table_rows", "runs_dir", "saliency",
    "saved_run", "sketch_batch", "sketch_files", "source_name", "suggest", "suggested", "suggested_for", "suggested_model", "teach",
    "to_display", "train", "training_figures", "transfer_vs_scratch", "unfreeze_plan", "weights_choices",
    "write_bytes", "Ranking", "parse_candidates", "rank", "APP_PHOTO_BUDGET_S", "Fit", "check_budget", "fit_budget", "fit_run", "GAIN_SHOTS", "Shift", "shift", "shift_figure", "transfer_gain", "MAX_CAPTURE_CLASSES", "MAX_FRAMES", "MAX_PER_CLASS", "Captured", "Fitted", "LINE_NAMES", "SEMI", "add_unlabelled", "load_unlabelled", "with_pool", "with_pseudo_labels",
]


def suggest(cfg: RunConfig, n_train: int, *, keep: dict | None = None) -> RunConfig:
    """``cfg`` with the suggested settings (:data:`SUGGESTED`) for its model and ``n_train``
    training images, except those in ``keep`` (the user's own, which win). The one place both
    front ends get suggestions from."""
    keep = keep or {}
    chosen = {k: v for k, v in suggested_for(cfg, n_train).items() if k in SUGGESTED and k not in keep}
    return dataclasses.replace(cfg, **chosen, **keep).validate()


def reopened_run(folder: str | Path) -> tuple[RunResult, ImageData, str]:
    """A saved run read back (an opened session's) with the data to judge it on: its own dataset
    when it loads again here, split as it was; else the sample of it kept with the run, which the
    note then names (an uploaded set is gone once its upload is)."""
    result = saved_result(folder)
    try:
        return result, load_run_data(result.config), ""
    except TLCoreError as e:
        replay = load_replay(folder, result.classes)
        if replay is None:
            raise TLCoreError(f"{Path(folder).name}: its data cannot be loaded here ({e}) and it kept no sample of "
                              "it.") from None
        return result, replay, (f"its data is not here, so it is judged on the {len(replay.test)} test images kept "
                                "with it")


def evaluate_run(model: TransferNet, split: Split, classes: list[str], *, run: dict | None = None,
                 device: str | torch.device = "auto") -> Evaluation:
    """A trained model judged on ``split``: the one device and precision rule of every front end.

    ``run``: the run's saved config (``config.json``'s ``run``, or ``RunConfig.to_dict()`` plus
    ``precision_used``). On a CPU the run is judged in the precision it was trained and tested
    in, so the accuracy training reported is reproduced exactly; on a GPU, the run's precision
    setting. ``device``: "auto" takes the best there is, as training did.
    """
    dev = device if isinstance(device, torch.device) else pick_device(device)
    amp = run_autocast_dtype(dev, run or {})
    try:
        return evaluate(model.to(dev), split.images, split.labels, list(classes), device=dev, autocast_dtype=amp)
    finally:
        model.to("cpu")


@contextlib.contextmanager
def distributed_run() -> Iterator[bool]:
    """Inside: torchrun's process group when started by torchrun (True), else nothing (False)."""
    if not distributed.init_from_env():
        yield False
        return
    try:
        yield True
    finally:
        distributed.finish()
