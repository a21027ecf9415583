"""``python -m tlcore``: the command line over the same registries the app uses.

Every user error exits with code 2 and one line on stderr; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from .config import STRATEGIES, RunConfig
from .errors import TLCoreError
from .events import Callback, StopToken

INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage too; we promise one line
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _summary(fn) -> str:
    return (getattr(fn, "__doc__", None) or "").strip().splitlines()[0] if getattr(fn, "__doc__", None) else ""


def cmd_datasets(args) -> int:
    from .api import DATASETS, list_datasets, load_dataset

    if not args.describe:
        for name in list_datasets():
            entry = DATASETS.get(name)
            doc = _summary(entry) if callable(entry) and hasattr(entry, "__name__") else f"torchvision {entry.cls}"
            print(f"{name:16s} {doc}")
        print(f"{'PATH':16s} a folder or .zip of class folders (ImageFolder layout)")
        return 0
    data = load_dataset(args.describe, data_dir=args.data_dir, seed=args.seed, val_fraction=args.val_fraction,
                        samples_per_class=args.samples_per_class, image_size=args.image_size,
                        download=not args.no_download)
    d = data.describe()
    if args.json:
        print(json.dumps(d))
    else:
        print(f"{d['name']}: {len(d['classes'])} classes, {d['channels']} channel(s), {d['size']}x{d['size']}")
        print("splits: " + ", ".join(f"{k} {v:,}" for k, v in d["splits"].items()))
        print("classes: " + ", ".join(d["classes"]))
        for reason, n in d.get("skipped", {}).items():
            print(f"skipped: {n} {reason}")
    return 0


def cmd_backbones(args) -> int:
    from .api import BACKBONES, describe_backbone, list_backbones, weights_choices

    if not args.describe:
        for name in list_backbones():
            print(f"{name:20s} weights: {', '.join(weights_choices(name))}  {_summary(BACKBONES.get(name))}")
        print(f"{'timm:<name>':20s} weights: imagenet, none  any model from timm.list_models()")
        return 0
    d = describe_backbone(args.describe, weights=args.weights, num_classes=args.num_classes, preset=args.preset,
                          image_size=args.image_size)
    if args.json:
        print(json.dumps(d))
    else:
        i = d["input"]
        print(f"{d['name']} ({d['weights']}), input {i['channels']}x{i['size']}x{i['size']}, {d['num_classes']} classes")
        print(f"{'group':18s} {'params':>12s} {'trainable':>12s}")
        for g in d["groups"]:
            print(f"{g['name']:18s} {g['params']:12,d} {g['trainable']:12,d}")
        print(f"{'total':18s} {d['total_params']:12,d} {d['trainable_params']:12,d}")
    return 0


class ProgressBar(Callback):
    """tqdm on stderr, fed by the training loop's events."""

    def __init__(self):
        self.bar = None
        self.tenths = 0  # of a feature pass said so far: a pass over a big set takes minutes

    def on_phase(self, trainer, phase, fraction=None):
        # Only after the run started: a run that fails while loading says one line, the error.
        if fraction in (None, 0.0) and phase not in ("loading", "training"):
            self.tenths = 0
            self._say(f"[{phase}]")
        elif phase == "caching features" and int(fraction * 10) > self.tenths:
            self.tenths = int(fraction * 10)
            self._say(f"[{phase}] {self.tenths * 10}%")

    def _say(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr, flush=True)

    def on_run_start(self, trainer, info):
        from tqdm import tqdm

        for note in info.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"device: {info.device} | train {info.train_size:,} val {info.val_size:,} test {info.test_size:,} | "
              f"{info.trainable_params:,} of {info.total_params:,} parameters train"
              + (" | feature cache" if info.feature_cache else ""), file=sys.stderr)
        self.bar = tqdm(total=info.epochs * info.steps_per_epoch, unit="step", file=sys.stderr, dynamic_ncols=True)

    def on_step(self, trainer, e):
        self.bar.update(e.done - self.bar.n)
        self.bar.set_postfix_str(f"ep {e.epoch} loss {e.loss:.4f} acc {e.accuracy:.4f} {e.images_per_second:,.0f} img/s")

    def on_epoch_end(self, trainer, e):
        self.bar.write(f"epoch {e.epoch}/{e.epochs}: train loss {e.train_loss:.4f} acc {e.train_accuracy:.4f} | "
                       f"val loss {e.val_loss:.4f} acc {e.val_accuracy:.4f}{' *' if e.best else ''}", file=sys.stderr)

    def on_unfreeze(self, trainer, e):
        self.bar.write(f"epoch {e.epoch}: {', '.join(e.thawed)} unfrozen; training "
                       + ", ".join(f"{g} at lr {lr:.3g}" for g, lr in e.lrs.items()), file=sys.stderr)

    def on_run_end(self, trainer, e):
        if self.bar is not None:
            self.bar.close()


# -- RunConfig on the command line: one flag per field, from the field's Knob ----------------------
def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """``--<field>`` for every RunConfig field: its type, default and help from its Knob."""
    for f in dataclasses.fields(RunConfig):
        knob, flag = f.metadata["knob"], "--" + f.name.replace("_", "-")
        default = None if knob.suggested else f.default
        help = (knob.help + ("; default: suggested" if knob.suggested else "")).replace("%", "%%")
        if knob.kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help)
        elif knob.kind == "number":
            parser.add_argument(flag, type=int if knob.integer else float, default=default, help=help,
                                metavar=knob.metavar)
        else:  # names and paths; RunConfig.validate words the errors
            parser.add_argument(flag, default=default, help=help)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the flags say, validated; ``--frozen a,b`` replaces the preset."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)}
    if values["frozen"] is not None:
        values["frozen"], values["preset"] = [g for g in values["frozen"].split(",") if g], None
    return RunConfig(**values).validate()


def cmd_train(args) -> int:
    from .api import distributed_run

    budget_s = _train_budget(args)  # before any rank starts or data loads
    with distributed_run():  # under torchrun: one process per rank, one run
        return _train(args, budget_s)


def suggested_config(args: argparse.Namespace):
    """``(cfg, data)``: the flags' RunConfig, the suggestions for this model and this much data in
    place of the suggested flags not given (``data``: loaded to size them, or None)."""
    from .api import SUGGESTED, load_run_data, suggest

    # RunConfig's defaults stand in while everything typed is validated, then the suggestions replace them.
    missing = [k for k in SUGGESTED if getattr(args, k) is None]
    cfg = config_from_args(argparse.Namespace(**{**vars(args), **{k: getattr(RunConfig, k) for k in missing}}))
    if not missing:
        return cfg, None
    data = load_run_data(cfg)
    if cfg.semi_supervised is not None:  # sized for the images it will train on: labelled and pseudo-labelled
        from .api import with_pseudo_labels

        data = with_pseudo_labels(data, cfg, StopToken())
    return suggest(cfg, len(data.train), keep={k: getattr(cfg, k) for k in SUGGESTED if k not in missing}), data


def cmd_lr_find(args) -> int:
    """The learning-rate sweep on the run the flags describe; the suggested rate and its rule."""
    from .api import lr_find, lr_find_figure

    cfg, data = suggested_config(args)
    f = lr_find(cfg, data=data, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps, rule=args.rule)
    if args.plot:
        _write_figure(lr_find_figure(f), args.plot)
    print(f"suggested lr: {f.suggested_lr:.3g} (rule: {f.rule}); swept {len(f.lrs)} steps from {f.lrs[0]:.1e} "
          f"to {f.lrs[-1]:.1e}{', stopped when the loss blew up' if f.stopped_early else ''}", file=sys.stderr)
    if args.json:
        print(json.dumps(f.to_dict()))
    return 0


@contextlib.contextmanager
def interrupt_stops() -> Iterator[StopToken]:
    """Inside: the first Ctrl-C asks the run to stop, as the app's Stop button does (it ends within
    a step, keeps its best epoch and is saved, marked stopped); a second one quits at once.

    Under torchrun every rank gets the signal at its own step, and a rank that stops alone would
    leave the others waiting in their gradient sums: there Ctrl-C quits, as Python's default does.
    """
    stop = StopToken()
    if threading.current_thread() is not threading.main_thread() or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield stop
        return

    def first_asks_second_quits(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.stop()
        print("\nStopping within a step; the best epoch so far is kept and saved (Ctrl-C again quits now).",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, first_asks_second_quits)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _train(args, budget_s: float | None = None) -> int:
    import time

    from .api import runs_dir, train

    if args.resume:
        return _continue(args)
    cfg, data = suggested_config(args)
    fit = None
    if budget_s is not None:
        from .api import fit_run, load_run_data

        data = data if data is not None else load_run_data(cfg)
        cfg, fit = fit_run(budget_s, cfg, data)
        print(fit.sentence(), file=sys.stderr, flush=True)
    out = Path(args.out) if args.out else runs_dir() / f"{Path(cfg.dataset).stem}-{cfg.backbone.replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    with interrupt_stops() as stop:
        result = train(cfg, data=data, callbacks=[ProgressBar()], out=out, stop=stop)
    return _report(result, args, interrupted=stop.requested, extra={"budget_fit": fit.to_dict()} if fit else None)


def _train_budget(args) -> float | None:
    """``--budget-minutes`` in seconds, checked before any data loads (None: none asked)."""
    from .api import check_budget

    budget_s = check_budget(args.budget_minutes)
    if budget_s is not None and args.image_size is not None:
        raise TLCoreError(f"--budget-minutes picks the image size: give it or --image-size {args.image_size}, not both.")
    if budget_s is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Each rank would time its own steps and could pick another size than the others.
        raise TLCoreError("--budget-minutes sizes a run in one process; under torchrun give --image-size instead.")
    return budget_s


def _continue(args) -> int:
    """``train --resume RUN --epochs N``: that run trained on to N epochs, saved as a new run."""
    from .api import continue_run, runs_dir

    if args.epochs is None:
        raise TLCoreError("--resume needs --epochs: how many epochs the run should have in all.")
    out = Path(args.out) if args.out else runs_dir() / f"{Path(args.resume).name}-to{args.epochs}"
    with interrupt_stops() as stop:
        result = continue_run(args.resume, args.epochs, callbacks=[ProgressBar()], out=out, stop=stop)
    return _report(result, args, interrupted=stop.requested)


def _report(result, args, *, interrupted: bool = False, extra: dict | None = None) -> int:
    """The run's summary (one JSON object with ``--json``); exit code 130 if Ctrl-C ended it."""
    from .api import is_main_process

    if not is_main_process():  # one run, one summary: rank 0's
        return 0
    if result.status == "failed":
        raise TLCoreError(result.message)
    s = result.summary()
    tested = (f"test accuracy: {s['test_accuracy']:.4f}" if s["test_accuracy"] is not None else
              "not measured on the test split" + (f" (python -m tlcore evaluate {s['checkpoint']} measures it)"
                                                  if s["checkpoint"] else ""))
    print(f"{result.message} {tested}; saved to {s['checkpoint']}", file=sys.stderr)
    if result.source_accuracy_after is not None:
        print(f"source task (its replay sample): {result.source_accuracy_before:.4f} before, "
              f"{result.source_accuracy_after:.4f} after", file=sys.stderr)
    if "per_class_recall" in s:  # skewed classes: what plain accuracy hides
        print(f"balanced accuracy {s['balanced_accuracy']:.4f} (classes {s['class_skew']:g}x skewed, balance: "
              f"{s['balance']}); recall per class: "
              + ", ".join(f"{c} {r:.2f}" for c, r in s["per_class_recall"].items()), file=sys.stderr)
    if args.json:
        print(json.dumps({**s, **(extra or {})}))
    return INTERRUPTED if interrupted else 0


def _comparison_data(args):
    from .api import load_run_data

    return load_run_data(RunConfig(dataset=args.dataset, data_dir=args.data_dir).validate())


def _say_progress(p) -> None:
    """A study's "run k of N, about M minutes left" (and its closing sentence) on stderr."""
    print(p.sentence if p.done and p.sentence else p.text, file=sys.stderr, flush=True)


def cmd_curve(args) -> int:
    from .api import check_budget, check_curve, curve, curve_figure, parse_shots

    fixed = {k: v for k, v in (("image_size", args.image_size), ("precision", args.precision),
                               ("device", args.device)) if v is not None}
    shots, strategies = parse_shots(args.shots), [s.strip() for s in args.strategies.split(",") if s.strip()]
    check_curve(shots, args.seeds, strategies, args.weights)  # before any data loads
    budget_s = check_budget(args.budget_minutes)
    data = _comparison_data(args)

    def report(p):
        pseudo = "" if p.unlabelled_used is None else (
            f", {p.unlabelled_used} unlabelled used" + ("" if p.pseudo_label_accuracy is None
                                                        else f", {p.pseudo_label_accuracy:.1%} of them right"))
        print(f"{p.strategy:12s} {p.shots or 'all'!s:>4} per class, seed {p.seed}: test accuracy {p.accuracy:.4f} "
              f"({p.epochs} epochs, {p.seconds:.1f} s{pseudo})", file=sys.stderr, flush=True)

    with interrupt_stops() as stop:  # Ctrl-C: the curve ends keeping every finished point
        result = curve(data, backbone=args.backbone, weights=args.weights, shots=shots, seeds=args.seeds,
                       strategies=strategies, sink=report, stop=stop, progress=_say_progress,
                       semi_method=args.semi_supervised, budget_s=budget_s, **fixed)
    if args.plot:
        _write_figure(curve_figure(result.results(), result.n_classes), args.plot)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        for r in result.results():
            print(f"{r['strategy']:12s} {r['shots'] or 'all'!s:>4} per class: {r['accuracy']:.4f} "
                  f"± {r['std']:.4f} ({r['seeds']} seeds, {r['seconds']:.1f} s a run)")
    return 0


def cmd_rank(args) -> int:
    """Transferability scores of each candidate source on the data, best LogME first; --check trains probes too."""
    from .api import parse_candidates, rank

    candidates = parse_candidates(args.candidates)  # before any data loads
    data = _comparison_data(args)
    with interrupt_stops() as stop:
        result = rank(data, candidates, per_class=args.per_class, check=args.check, seed=args.seed, stop=stop,
                      say=lambda line: print(line, file=sys.stderr, flush=True))
    print(result.sentence(), file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        for c in result.candidates:
            probe = f"  probe {c.probe_accuracy:.4f}" if c.probe_accuracy is not None else ""
            leep = f"{c.leep:8.4f}" if c.leep is not None else "     n/a"
            print(f"{c.backbone:20s} {c.weights[-28:]:28s} LogME {c.logme:8.4f}  LEEP {leep}  5-NN "
                  f"{c.knn_accuracy:.4f}  {c.seconds:5.1f} s{probe}")
    return 0


def cmd_shift(args) -> int:
    """How far each target lies from the source in a body's features; --gain sets the transfer's gain beside it."""
    from .api import GAIN_SHOTS, load_run_data, shift, shift_figure, transfer_gain

    def load(name):
        return load_run_data(RunConfig(dataset=name, data_dir=args.data_dir).validate())

    names = [t.strip() for t in args.target.split(",") if t.strip()]
    source, targets = load(args.source), [load(t) for t in names]
    with interrupt_stops() as stop:
        gain = None if not args.gain else lambda data: transfer_gain(
            data, backbone=args.backbone, weights=args.weights, shots=GAIN_SHOTS, seeds=args.seeds, stop=stop)
        result = shift(source, targets, backbone=args.backbone, weights=args.weights, images=args.images, gain=gain,
                       stop=stop, say=lambda line: print(line, file=sys.stderr, flush=True))
    print(result.sentence(), file=sys.stderr)
    if args.plot:
        _write_figure(shift_figure(result.to_dict()), args.plot)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        a = result.anchor
        print(f"{'(anchor) ' + result.source + ' test':24s} Fréchet {a['frechet']:9.3f}  x 1.00  MMD {a['mmd']:.4f}  "
              f"proxy A {a['proxy_a']:.2f}")
        for t in result.targets:
            gain = "" if t.gain is None else f"  gain {t.gain:+.1%} (probe {t.probe_accuracy:.1%}, scratch {t.scratch_accuracy:.1%})"
            print(f"{t.target:24s} Fréchet {t.frechet:9.3f}  x{t.relative:5.1f}  MMD {t.mmd:.4f}  proxy A {t.proxy_a:.2f}  "
                  f"classes {t.classes} ({t.shared_classes} shared){gain}")
    return 0


def cmd_compare(args) -> int:
    from .api import check_budget, transfer_vs_scratch

    budget_s = check_budget(args.budget_minutes)  # before any data loads
    with interrupt_stops() as stop:
        r = transfer_vs_scratch(_comparison_data(args), backbone=args.backbone, weights=args.weights,
                                preset=args.preset, seed=args.seed, stop=stop, progress=_say_progress, budget_s=budget_s)
    print(json.dumps(r.to_dict()) if args.json else r.summary().replace("**", ""))
    return INTERRUPTED if stop.requested else 0


def cmd_lesson(args) -> int:
    """Transfer learning in seven measured steps, each concluded from its own numbers."""
    from .api import lesson

    with interrupt_stops() as stop:  # Ctrl-C: the lesson ends after the steps that finished
        result = lesson(quick=args.quick, data_dir=args.data_dir, stop=stop,
                        progress=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        for i, step in enumerate(result.steps, start=1):
            print(f"{i}. {step.name} ({step.seconds:.0f} s)\n   {step.conclusion}\n")
        print(f"{result.seconds:.0f} s in all" + (" (stopped)" if result.stopped else ""))
    return INTERRUPTED if stop.requested else 0


def _write_figure(fig, path: str) -> None:
    """HTML (plotly's own, works offline) or an image (needs the kaleido package)."""
    if path.lower().endswith((".html", ".htm")):
        fig.write_html(path, include_plotlyjs=True)
        return
    try:
        fig.write_image(path)
    except (ImportError, ValueError, RuntimeError) as e:
        raise TLCoreError(f"Could not write {path} ({type(e).__name__}): an image needs the kaleido package "
                          f"(pip install kaleido); or give a .html path.") from None


def _run_test_data(args, model, meta):
    """The images a saved run is judged on: ``--dataset`` (any labelled set, all of it unless it holds a
    held-out folder), else the run's own dataset's test split, cut as the run's was."""
    from .api import is_path, load_dataset, load_labelled

    run = meta.get("run") or {}
    name = args.dataset or run.get("dataset")
    if not name:
        raise TLCoreError("This run does not record its dataset; pass --dataset.")
    if args.dataset and is_path(args.dataset):
        data = load_labelled(args.dataset, list(meta["classes"]), image_size=model.spec.size)
    else:
        data = load_dataset(name, data_dir=args.data_dir or run.get("data_dir"), seed=run.get("seed", 0),
                            val_fraction=run.get("val_fraction", 0.1))
    if list(data.classes) != list(meta["classes"]):
        raise TLCoreError(f"Dataset {name!r} has classes {data.classes[:5]}..., the run was trained on "
                          f"{meta['classes'][:5]}...: evaluate it on data with the same classes.")
    return name, data


def cmd_evaluate(args) -> int:
    from .api import evaluate_run, load_run

    model, meta = load_run(args.checkpoint)
    name, data = _run_test_data(args, model, meta)
    result = evaluate_run(model, data.test, data.classes, run=meta.get("run"))
    d = result.to_dict()
    if args.json:
        print(json.dumps(d))
    else:
        print(f"{name} test: accuracy {d['accuracy']:.4f}, macro AUC {d['macro_auc']:.4f} ({d['size']:,} images)")
        print(result.per_class.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_features(args) -> int:
    """Penultimate-layer features of the test images, before and after: 5-NN accuracy, and a 2-D chart."""
    from .api import feature_space, feature_space_figure, load_run, panels

    model, meta = load_run(args.checkpoint)
    name, data = _run_test_data(args, model, meta)
    space = feature_space(model, (meta.get("run") or {}).get("weights", "none"), data.test.images, data.test.labels, seed=args.seed)
    if args.plot:
        labels = data.test.labels.numpy()
        _write_figure(feature_space_figure(panels(space, args.projection, seed=args.seed), labels, data.classes,
                                           args.projection), args.plot)
    d = space.to_dict()
    if args.json:
        print(json.dumps(d))
    else:
        for key in ("before", "after"):
            v = d[key]
            print(f"{v['title']}: 5-NN accuracy {v['knn_accuracy']:.4f} ({v['dim']} features, {v['size']:,} {name} "
                  f"test images)" if v else f"before: {d.get('note', '')}")
    return 0


def cmd_export(args) -> int:
    from .api import card_beside, export_run

    out = export_run(args.checkpoint, args.format, args.out)
    card = card_beside(out)
    print(f"exported {args.checkpoint} as {args.format}: {out} (model card: {card})", file=sys.stderr)
    if args.json:
        print(json.dumps({"export": str(out), "card": str(card), "format": args.format}))
    return 0


def cmd_predict(args) -> int:
    from .api import load_image_files, load_run, predict_files

    model, meta = load_run(args.checkpoint)
    if args.sketch:
        from .api import sketch_files
        batch = sketch_files(args.images, model.spec)
    else:
        batch = load_image_files(args.images, model.spec)
    for path, probs in zip(args.images, predict_files(model, batch)):
        top = max(probs, key=probs.get)
        if args.json:
            print(json.dumps({"image": path, "label": top, "probabilities": probs}))
        else:
            print(f"{path}: {top} ({probs[top]:.3f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m tlcore", description="Transfer Learning Studio engine.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("datasets", help="list datasets, or describe one")
    d.add_argument("--describe", metavar="NAME_OR_PATH", help="a registered name, or a folder / .zip path")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.add_argument("--data-dir", default=None, help="folder with torchvision datasets (default: $TLCORE_DATA_DIR)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--val-fraction", type=float, default=0.1)
    d.add_argument("--samples-per-class", type=int, default=None, help="few-shot: keep K training images per class")
    d.add_argument("--image-size", type=int, default=None, help="decode photos to this square size")
    d.add_argument("--no-download", action="store_true", help="never try the network")
    d.set_defaults(fn=cmd_datasets)

    b = sub.add_parser("backbones", help="list backbones, or describe one's layer groups")
    b.add_argument("--describe", metavar="NAME", help="a registered name or timm:<name>")
    b.add_argument("--weights", default="none", help="imagenet, none, or a saved run folder")
    b.add_argument("--num-classes", type=int, default=10)
    b.add_argument("--preset", default=None, help="linear-probe, finetune-top-K or full")
    b.add_argument("--image-size", type=int, default=None)
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(fn=cmd_backbones)

    _train_parser(sub)

    _lr_find_parser(sub)
    _comparison_parsers(sub)

    e = sub.add_parser("evaluate", help="evaluate a saved run on its dataset's test split, or on any labelled folder or zip")
    e.add_argument("--checkpoint", required=True, help="a run folder")
    e.add_argument("--dataset", default=None, help="default: the dataset it was trained on (its test split); a folder "
                   "or zip with only test/ or no split folders is used whole")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_evaluate)

    _features_parser(sub)

    x = sub.add_parser("export", help="export a saved run as ONNX or TorchScript, with its model card")
    x.add_argument("--checkpoint", required=True, help="a run folder")
    x.add_argument("--format", required=True, choices=["onnx", "torchscript"])
    x.add_argument("--out", default=None, help="the file to write (default: model.onnx / model.pt in the run folder)")
    x.add_argument("--json", action="store_true")
    x.set_defaults(fn=cmd_export)

    pr = sub.add_parser("predict", help="label image files with a saved run")
    pr.add_argument("--checkpoint", required=True, help="a run folder")
    pr.add_argument("--sketch", action="store_true",
                    help="the images are drawings: find the ink, fit and centre it as MNIST was made")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--json", action="store_true", help="one JSON object per image")
    pr.set_defaults(fn=cmd_predict)
    return p


def _features_parser(sub) -> None:
    f = sub.add_parser("features", help="how well a run's features separate the test classes, before and after "
                       "training (5-NN accuracy), and a 2-D chart of them")
    f.add_argument("--checkpoint", required=True, help="a run folder")
    f.add_argument("--dataset", default=None, help="default: the run's own dataset (its test split)")
    f.add_argument("--data-dir", default=None)
    f.add_argument("--plot", default=None, metavar="PATH", help="write the chart: .html, or .png with kaleido")
    f.add_argument("--projection", default="pca", choices=["pca", "tsne"], help="how the chart goes to 2-D")
    f.add_argument("--seed", type=int, default=0, help="the k-NN folds' and the projection's sample")
    f.add_argument("--json", action="store_true", help='print {"before": {"knn_accuracy": ...}, "after": {...}}')
    f.set_defaults(fn=cmd_features)


def _lesson_parser(sub) -> None:
    ls = sub.add_parser("lesson", help="transfer learning in seven measured steps: the source, a small task, how much "
                        "data, forgetting, why it works, the images nobody labelled, your turn (a few minutes on 2 CPU cores)")
    ls.add_argument("--quick", action="store_true", help="two epochs a run (a check that it works, not the lesson)")
    ls.add_argument("--data-dir", default=None, help="where MNIST is, to measure the source on its whole test set "
                    "(default: $TLCORE_DATA_DIR; without it, the source's bundled sample)")
    ls.add_argument("--json", action="store_true",
                    help='print {"steps": [{"name", "seconds", "numbers", "conclusion"}], "seconds"}')
    ls.set_defaults(fn=cmd_lesson)


def _lr_find_parser(sub) -> None:
    lf = sub.add_parser("lr-find", help="sweep the learning rate on a copy of the run (the train flags) and suggest one")
    add_config_flags(lf)
    lf.add_argument("--start-lr", type=float, default=1e-7, help="the sweep's first (head) rate")
    lf.add_argument("--end-lr", type=float, default=10.0, help="its last, unless the loss blows up first")
    lf.add_argument("--steps", type=int, default=100, help="updates in the sweep, one batch each")
    lf.add_argument("--rule", default="steep", choices=["steep", "valley", "minimum"],
                    help="how the rate is read off the curve (fastai's names)")
    lf.add_argument("--plot", default=None, metavar="PATH", help="write the curve: .html, or .png with kaleido")
    lf.add_argument("--json", action="store_true", help="print one JSON object: suggested_lr, lrs, losses, rule")
    lf.set_defaults(fn=cmd_lr_find)


def _rank_parser(sub) -> None:
    r = sub.add_parser("rank", help="which source to start from: LogME, LEEP and 5-NN accuracy of each candidate's "
                                    "features, from one feature pass (--check trains each as a linear probe too)")
    r.add_argument("--dataset", default="digits", help="registered name or folder / .zip path")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--candidates", required=True,
                   help="BACKBONE:WEIGHTS,... e.g. efficientnet_lite0:imagenet,lenet5:assets/models/lenet5-mnist,"
                        "efficientnet_lite0:none (random weights: the floor)")
    r.add_argument("--per-class", type=int, default=100, help="training images per class the scores see")
    r.add_argument("--seed", type=int, default=0, help="which images the sample takes")
    r.add_argument("--check", action="store_true", help="also train each as a linear probe and give each score's "
                                                        "Kendall tau against the probes' test accuracies")
    r.add_argument("--json", action="store_true", help='print {"candidates": [...], "kendall_tau": ...}')
    r.set_defaults(fn=cmd_rank)


def _shift_parser(sub) -> None:
    s = sub.add_parser("shift", help="how far targets lie from the source: Fréchet distance, MMD and proxy A-distance "
                                     "of a body's features, anchored by the source's own test split")
    s.add_argument("--source", default="mnist", help="registered name or folder / .zip path")
    s.add_argument("--target", required=True, help="one or more, comma-separated: e.g. "
                   "mnist,mnist-small,mnist-inverted,mnist-m,digits,cifar10-mini.zip")
    s.add_argument("--backbone", default="lenet5")
    s.add_argument("--weights", required=True, help="imagenet, none, or a saved run folder (the source model)")
    s.add_argument("--data-dir", default=None)
    s.add_argument("--images", type=int, default=300, help="images a side (every test split must have them)")
    s.add_argument("--gain", action="store_true", help="also train each target at 5 per class, linear probe and "
                                                       "scratch: the transfer's gain against the distance")
    s.add_argument("--seeds", type=int, default=3, help="with --gain: runs per strategy and target")
    s.add_argument("--plot", default=None, metavar="PATH", help="write the chart: .html, or .png with kaleido")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(fn=cmd_shift)


def _train_parser(sub) -> None:
    t = sub.add_parser("train", help="fine-tune a backbone on a dataset and save the run")
    add_config_flags(t)
    t.add_argument("--out", default=None, help="run folder (default $TLCORE_RUNS_DIR or runs/, then <dataset>-<backbone>-<time>)")
    t.add_argument("--resume", default=None, metavar="RUN",
                   help="continue this saved run to --epochs in all (its own settings; saved as a new run)")
    t.add_argument("--json", action="store_true", help="last stdout line: one JSON summary")
    t.add_argument("--budget-minutes", type=float, default=None,
                   help="fit the run to this many minutes: the largest image size whose estimate (timed steps at "
                        "that size) fits, epochs cut only if the smallest does not; said before it starts")
    t.set_defaults(fn=cmd_train)


def _comparison_parsers(sub) -> None:
    _rank_parser(sub)
    _shift_parser(sub)
    c = sub.add_parser("curve", help="test accuracy against samples per class: scratch, linear probe, fine-tune")
    k = sub.add_parser("compare", help="transfer vs scratch: one recipe from the source weights and from random ones")
    for p in (c, k):
        p.add_argument("--dataset", default="digits", help="registered name or folder / .zip path")
        p.add_argument("--data-dir", default=None)
        p.add_argument("--backbone", default="lenet5")
        p.add_argument("--weights", required=True, help="the source: imagenet or a saved run folder")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument("--budget-minutes", type=float, default=None,
                       help="fit the study to this many minutes: every run at the largest image size whose estimate "
                            "(timed steps at that size) fits, epochs cut only if the smallest does not; said in the result")
    c.add_argument("--shots", default="1,2,5,10,20,50,all", help="samples per class, comma-separated ('all' too)")
    c.add_argument("--seeds", type=int, default=3)
    c.add_argument("--strategies", default=",".join(STRATEGIES),
                   help="comma-separated: scratch, linear-probe, fine-tune, semi-supervised (the probe plus the "
                        "rest of the training split without its labels)")
    c.add_argument("--semi-supervised", default="label-spreading", choices=("label-spreading", "self-training"),
                   help="how the semi-supervised strategy labels the unlabelled images")
    c.add_argument("--image-size", type=int, default=None)
    c.add_argument("--precision", default=None, help="auto, fp32, bf16 or fp16")
    c.add_argument("--device", default=None)
    c.add_argument("--plot", default=None, metavar="PATH", help="write the chart: .html, or .png with kaleido")
    c.set_defaults(fn=cmd_curve)
    k.add_argument("--preset", default="full", help="the transfer run's freezing: linear-probe, finetune-top-K, full")
    k.add_argument("--seed", type=int, default=0)
    k.set_defaults(fn=cmd_compare)
    _lesson_parser(sub)  # the studies told as a lesson


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except TLCoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `... | head` closed the pipe: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
