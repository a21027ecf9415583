"""RunConfig: every knob of a run, its default and its valid range, validated in one place.

Each field carries a :class:`Knob` in its metadata: the rule it must satisfy, its help text and
how the app shows it. :meth:`RunConfig.validate` checks every field by its knob, the CLI builds
its ``train`` flags from the knobs and the Train tab its inputs, so a bad value gets the same
message wherever it was typed, and a new setting is one field here. The config is saved with
the run.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import asdict, dataclass, fields

from .errors import TLCoreError, verify_choice

OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("constant", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
STRATEGIES = ("scratch", "linear-probe", "fine-tune")  # ways to use a source model (tlcore.studies.compare)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BALANCES = ("loss", "sampler", "none")  # what evens skewed classes out in training (tlcore.training.balance)
SEMI_METHODS = ("label-spreading", "self-training")  # how unlabelled images get labels (tlcore.training.semi)
# Caps keep a hosted app responsive and a typo (epochs=1000) from running all week.
MAX_EPOCHS = 200
MAX_BATCH = 4096
MAX_LR = 10.0
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 512  # a model's input side (LeNet-5 pools twice; VGG at 512 px is 2 GB a batch)
# Saved beside a run's config, not settings: how it actually ran (tlcore.training.callbacks.SaveRun.save).
RECORDED = ("precision_used", "world_size", "effective_batch_size", "lr_scaling")


@dataclass(frozen=True)
class Knob:
    """How one RunConfig field is checked, offered on the command line and shown in the app.

    ``kind``: number | choice | bool | text (a non-empty string) | any (checked where it is used).
    """

    help: str
    kind: str = "any"
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = True  # lo itself is not allowed
    hi_open: bool = False  # hi itself is not allowed
    integer: bool = False
    optional: bool = False  # None is allowed (its meaning is in help)
    choices: tuple = ()
    rule: str = ""  # how the rule reads in an error, when not "a number > lo and <= hi"
    label: str = ""  # the app's label
    slider: tuple[float, float, float] | None = None  # the app's (min, max, step), inside the valid range
    step: float | None = None  # the app's arrow-key step for a number box (default: 1 whole, 0.01 not)
    auto: str = "automatic"  # the app's word for None, where None means "let the engine decide"
    suggested: bool = False  # the CLI leaves it to tlcore.training.suggest unless typed
    metavar: str | None = None

    def check(self, name: str, value):
        """``value`` if it satisfies the rule (whole numbers as int); else TLCoreError naming it."""
        if value is None and self.optional:
            return None
        if self.kind == "choice":
            return verify_choice(value, name, self.choices)
        if self.kind == "number":
            return self._check_number(name, value)
        ok = {"bool": lambda v: isinstance(v, bool), "text": lambda v: isinstance(v, str) and bool(v.strip())}
        if self.kind in ok and not ok[self.kind](value):
            raise TLCoreError(f"{self.what(name)} must be {self.rule}, got {_shown(value)}.")
        return value

    def what(self, name: str) -> str:
        """How an error names the field: the app's label with the CLI's name, e.g. "Learning rate (lr)"."""
        label = re.sub(r"\s*\(.*\)$", "", self.label)
        if not label or label.lower().replace(" ", "_") == name:
            return label or name
        return f"{label} ({name})"

    def _check_number(self, name: str, v):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (v > self.lo if self.lo_open else v >= self.lo) and (v < self.hi if self.hi_open else v <= self.hi)
        ok = ok and (not self.integer or float(v).is_integer())
        if not ok:
            kind = "a whole number" if self.integer else "a number"
            rule = self.rule or (f"{kind} {'>' if self.lo_open else '>='} {_num(self.lo)} and "
                                 f"{'<' if self.hi_open else '<='} {_num(self.hi)}")
            raise TLCoreError(f"{self.what(name)} must be {rule}, got {_shown(v)}.")
        return int(v) if self.integer else v


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _shown(value) -> str:
    """A bad value as an error quotes it: an app's empty or non-numeric box arrives as None."""
    return "nothing (an empty box, or not a number)" if value is None else repr(value)


def check_freezing(preset: str | None, frozen: list[str] | None) -> None:
    """Freezing is asked for one way: a preset (its input form) or the frozen groups, not both."""
    if preset is not None and frozen is not None:
        raise TLCoreError("Give either a freezing preset or a list of frozen groups, not both.")


def check_unlabelled(cfg: "RunConfig") -> None:
    """The semi-supervised settings agree with each other and with the rest."""
    if cfg.labelled_per_class is not None and cfg.samples_per_class is not None:
        raise TLCoreError("Give either samples_per_class (the rest dropped) or labelled_per_class (the rest kept "
                          "without labels), not both.")
    if cfg.unlabelled == "rest" and cfg.labelled_per_class is None:
        raise TLCoreError("unlabelled='rest' means the training images beyond labelled_per_class: give "
                          "labelled_per_class too.")
    if cfg.semi_supervised is not None and cfg.weights == "none":
        raise TLCoreError("Semi-supervised labels the unlabelled images with the source model's features: choose "
                          "weights other than 'none' (imagenet, or a saved run).")


def _field(default, help: str, **kw) -> dataclasses.Field:
    """A RunConfig field with its Knob."""
    return dataclasses.field(default=default, metadata={"knob": Knob(help, **kw)})


def _number_field(default, help: str, lo: float, hi: float, **kw) -> dataclasses.Field:
    return _field(default, help, kind="number", lo=lo, hi=hi, **kw)


@dataclass
class RunConfig:
    # -- data
    dataset: str = _field("digits", "registered name or folder / .zip path", kind="text",
                          rule="a dataset name or path")
    data_dir: str | None = _field(None, "folder with torchvision datasets (default: $TLCORE_DATA_DIR)")
    samples_per_class: int | None = _number_field(None, "few-shot: training images kept per class", 0, 100_000,
                                                  integer=True, optional=True)
    imbalance: float | None = _number_field(None, "long tail: training class counts decay, class by class, down "
                                            "to 1/R of the first's (validation and test stay as they are)", 1,
                                            10_000, lo_open=False, optional=True, metavar="R")
    # -- images nobody labelled (tlcore.data.unlabelled, tlcore.training.semi)
    labelled_per_class: int | None = _number_field(None, "semi-supervised, measured: keep the labels of this many "
                                                   "training images per class; the rest join the unlabelled images "
                                                   "with their labels hidden (read only to score the pseudo-labels)",
                                                   0, 100_000, integer=True, optional=True)
    unlabelled: str | None = _field(None, "images without labels: a folder or .zip of them (any layout), or 'rest' "
                                    "(the training images beyond --labelled-per-class); an unlabelled/ folder "
                                    "inside the dataset counts too", kind="text", optional=True,
                                    rule="a folder or .zip path, or 'rest'")
    semi_supervised: str | None = _field(None, "label the unlabelled images from the source model's features "
                                         "(label-spreading or self-training), then train on them too; default: "
                                         "off", kind="choice", choices=SEMI_METHODS, optional=True,
                                         label="Label the unlabelled images with", auto="off")
    val_fraction: float = _number_field(0.1, "validation split carved from train", 0, 1, hi_open=True,
                                        rule="a fraction between 0 and 1 (exclusive)", slider=(0.05, 0.5, 0.05),
                                        label="Validation fraction")
    image_size: int | None = _number_field(None, "model input side (default: the backbone's or source run's own)",
                                           MIN_IMAGE_SIZE, MAX_IMAGE_SIZE, lo_open=False, integer=True, optional=True)
    augment: bool | None = _field(None, "random shifts/rotations (flips for photos); default: on when the body "
                                  "trains, off for a frozen body (then features are cached)", kind="bool",
                                  optional=True, rule="true, false or None (automatic)", label="Augmentation",
                                  auto="automatic (off for a frozen body)")
    # -- model
    backbone: str = _field("lenet5", "a registered name or timm:<name>", kind="text", rule="a backbone name")
    weights: str = _field("none", "imagenet, none, or a saved run folder (source model)")
    preset: str | None = _field("full", "linear-probe, finetune-top-K or full")  # None when `frozen` is given
    frozen: list[str] | None = _field(None, "comma-separated layer groups to freeze (instead of --preset)")
    train_bn: bool = _field(False, "BatchNorm in frozen groups keeps training (Lightning's train_bn)", kind="bool",
                            rule="true or false")
    # Gradual unfreezing (ULMFiT's): the preset says which groups train in the end; they join one at a time.
    unfreeze_every: int = _number_field(0, "gradual unfreezing: the head trains alone, then one more layer group, "
                                        "from the top, joins every this many epochs (up to what the preset lets "
                                        "train); 0 = off", 0, MAX_EPOCHS, lo_open=False, integer=True,
                                        label="Unfreeze one more group every (epochs, 0 = off)")
    # -- optimization; the suggested settings first, in the order the app's /train endpoint takes them
    epochs: int = _number_field(5, "passes over the training split", 0, MAX_EPOCHS, integer=True, suggested=True,
                                label="Epochs")
    batch_size: int = _number_field(128, "images per step", 0, MAX_BATCH, integer=True, suggested=True,
                                    label="Batch size")
    lr: float = _number_field(0.1, "the new head's; a pretrained body's is this x the body multiplier", 0, MAX_LR,
                              suggested=True, label="Learning rate (head)", step=0.001)
    optimizer: str = _field("sgd", "sgd (SGD with Nesterov momentum) or adamw", kind="choice", choices=OPTIMIZERS,
                            suggested=True, label="Optimizer")
    scheduler: str = _field("onecycle", "onecycle: rises, then falls to almost 0; cosine: falls smoothly; step: "
                            "x gamma every step_size epochs (x0.1 every 7); constant", kind="choice",
                            choices=SCHEDULERS, suggested=True, label="Learning-rate schedule")
    body_lr_mult: float = _number_field(1.0, "a pretrained body learns at lr x this: 0.1 lets it learn ten times "
                                        "slower than the new head", 0, 10, lo_open=False, suggested=True,
                                        label="Body learning-rate multiplier", step=0.1)
    layer_lr_decay: float = _number_field(1.0, "discriminative rates: each deeper body group learns at this x the "
                                          "rate of the group above it (e.g. 0.5); 1 = one rate for the whole body",
                                          0, 1, label="Per-group rate decay (deeper groups)", step=0.1)
    momentum: float = _number_field(0.9, "SGD only; Nesterov", 0, 0.999, lo_open=False)
    weight_decay: float = _number_field(5e-4, "AdamW / SGD weight decay (not on biases and norms)", 0, 1,
                                        lo_open=False)
    step_size: int = _number_field(7, "StepLR: epochs between decays (the tutorial's 7)", 0, MAX_EPOCHS,
                                   integer=True)
    gamma: float = _number_field(0.1, "StepLR: decay factor", 0, 1)
    warmup_epochs: float = _number_field(0.0, "linear warmup before step, cosine or constant; for onecycle, the "
                                         "rising part (0: a quarter of the run)", 0, MAX_EPOCHS, lo_open=False)
    # Softer targets: better calibrated, and +0.2% on MNIST in 3 epochs.
    label_smoothing: float = _number_field(0.1, "softer targets: the right class counts as 90% sure, not 100%, "
                                           "so the model is not pushed to be overconfident", 0, 0.5, lo_open=False, label="Label smoothing",
                                           slider=(0, 0.3, 0.05))
    balance: str | None = _field(None, "skewed classes: a class-weighted loss, a sampler that draws every class "
                                 "alike, or none; default: the loss when the training counts differ more than "
                                 "4x", kind="choice", choices=BALANCES, optional=True, label="Balance the classes",
                                 auto="automatic (the loss when counts differ > 4x)")
    early_stopping: int = _number_field(0, "stop after this many epochs without a better val loss; 0 = off", 0,
                                        MAX_EPOCHS, lo_open=False, integer=True, metavar="PATIENCE", suggested=True,
                                        label="Early stopping patience (epochs, 0 = off)")
    # -- not forgetting the source (tlcore.training.regularizers); 0 = off
    l2sp: float = _number_field(0.0, "L2-SP: pulls the pretrained body's weights back towards where they started, "
                                "the further they move the harder (a penalty of weight × 1/2 ||w - w0||^2: half the "
                                "squared distance from the starting weights w0; e.g. 0.01-0.1); zero with a frozen "
                                "body", 0, 1000,
                                lo_open=False, label="L2-SP weight (0 = off)")
    head_l2: float = _number_field(0.0, "plain L2 on the new head (weight of 1/2 ||w||^2)", 0, 1000, lo_open=False,
                                   label="Head L2 weight (0 = off)")
    lwf_weight: float = _number_field(0.0, "Learning without Forgetting: keep the source model's own outputs on the "
                                      "new images (needs a saved run as weights); zero with a frozen body", 0, 1000,
                                      lo_open=False, label="LwF weight (0 = off)")
    lwf_temperature: float = _number_field(2.0, "LwF's softening of both outputs (Li & Hoiem use 2)", 0, 100,
                                           label="LwF temperature")
    # -- execution
    seed: int = _number_field(0, "seeds the split, the initial weights, the order and augmentation", 0, 2**31 - 1,
                              lo_open=False, integer=True, label="Seed")
    device: str = _field("auto", "auto (cuda, then mps, then cpu), cpu, cuda or mps", kind="choice",
                         choices=DEVICES)
    precision: str = _field("auto", "auto: bf16 on CUDA (else fp16), bf16 on CPUs with AMX / AVX512-BF16, else "
                            "fp32", kind="choice", choices=PRECISIONS)
    compile: bool = _field(False, "torch.compile the model (CUDA: worth it for long runs)", kind="bool",
                           rule="true or false")
    feature_cache: bool = _field(True, "frozen body, no augmentation: compute features once", kind="bool",
                                 rule="true or false")

    def validate(self) -> "RunConfig":
        """Check every value; raise TLCoreError naming the first bad one and its valid range."""
        for f in fields(self):
            setattr(self, f.name, f.metadata["knob"].check(f.name, getattr(self, f.name)))
        check_freezing(self.preset, self.frozen)
        check_unlabelled(self)
        return self

    @classmethod
    def knob(cls, name: str) -> Knob:
        """A field's :class:`Knob` (its rule, help and how the app shows it)."""
        return {f.name: f for f in fields(cls)}[name].metadata["knob"]

    @classmethod
    def check(cls, **values) -> dict:
        """Just these fields, checked (and whole numbers made int) as :meth:`validate` would."""
        return {name: cls.knob(name).check(name, v) for name, v in values.items()}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_saved(cls, run: dict) -> "RunConfig":
        """The config a saved run's ``config.json`` records under "run" (what it also records about
        the run, such as ``precision_used``, left aside; fields it predates take their defaults)."""
        return cls.from_dict({k: v for k, v in run.items() if k not in RECORDED})

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Build from a dict (a saved config.json's "run"); unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TLCoreError(f"Unknown config keys: {', '.join(unknown)}. Valid keys: {', '.join(sorted(names))}.")
        return cls(**d)
