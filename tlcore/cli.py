"""``python -m tlcore``: the command line over the same registries the app uses.

Every user error exits with code 2 and one line on stderr; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import TLCoreError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage too; we promise one line
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _summary(fn) -> str:
    return (getattr(fn, "__doc__", None) or "").strip().splitlines()[0] if getattr(fn, "__doc__", None) else ""


def cmd_datasets(args) -> int:
    from .data import DATASETS, list_datasets, load_dataset

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
    from .models import BACKBONES, describe_backbone, list_backbones, weights_choices

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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except TLCoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head` closed the pipe: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
