"""A study's result in words, written from its numbers: who is ahead, by how much, and why.

Nothing here trains. The sentences quote the measurements they rest on, and a cause is named
only when a measurement supports it: the amount of data (images per class), what each arm
trains (a frozen body against a network training every layer), and the source's distance from
the target only when it was measured (:class:`SourceFit`: how well the source's features
separate the target's classes, against random weights of the same network).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..training.semi import STRATEGY as SEMI
from ..training.semi import THRESHOLD

MARGIN = 0.01  # a point of test accuracy: less is "about the same" (one seed each)
LITTLE_DATA = 20  # images per class up to which data is "little" (digits: scratch 0.92 at 5, 0.98 on all)
REACH = 0.9  # the level both arms reach: this fraction of the weaker arm's best validation accuracy
NEAR, FAR = 0.25, 0.10  # share of random features' 5-NN errors the source's features remove


@dataclass
class SourceFit:
    """How near the source is to the target, measured: 5-NN accuracy (cross-validated) of the
    target's test images in the source body's feature space and in a random body's."""

    source_knn: float
    random_knn: float
    images: int

    @property
    def removed(self) -> float:
        """The share of the random features' neighbour errors the source's features remove."""
        return (self.source_knn - self.random_knn) / max(1e-9, 1 - self.random_knn)

    @property
    def distance(self) -> str:
        """"near", "far", or "between"."""
        return "near" if self.removed >= NEAR else "far" if self.removed < FAR else "between"

    def words(self) -> str:
        return (f"its features put {self.source_knn:.1%} of {self.images} test images among 5 neighbours of "
                f"their class, random weights {self.random_knn:.1%}")

    def to_dict(self) -> dict:
        return {"source_knn": self.source_knn, "random_knn": self.random_knn, "images": self.images,
                "distance": self.distance}


@dataclass
class HeadStart:
    """What the validation curves show: accuracy after the first epoch, and the epoch each arm
    first reaches a level both reach (``REACH`` of the weaker arm's best)."""

    after_one: tuple[float, float]  # (transfer, scratch)
    level: float
    weaker_best: float
    epochs: tuple[int | None, int | None]  # the first epoch at or above ``level``

    @classmethod
    def of(cls, transfer: Sequence, scratch: Sequence) -> "HeadStart":
        """From the two runs' histories (EpochEvents or their dicts): the chart's own numbers."""
        curves = [[_val(e) for e in h] for h in (transfer, scratch)]
        weaker = min(max(c) for c in curves)
        level = REACH * weaker
        first = [next((i + 1 for i, v in enumerate(c) if v >= level), None) for c in curves]
        return cls((curves[0][0], curves[1][0]), level, weaker, (first[0], first[1]))

    def words(self, source: str) -> str:
        t, s = self.epochs
        return (f"After 1 epoch: {self.after_one[0]:.1%} from {source}, {self.after_one[1]:.1%} from scratch "
                f"(validation). To reach {self.level:.1%} ({REACH:.0%} of the weaker run's best, "
                f"{self.weaker_best:.1%}): {_epochs(t)} from {source}, {_epochs(s)} from scratch.")

    def to_dict(self) -> dict:
        return {"after_one_epoch": {"transfer": self.after_one[0], "scratch": self.after_one[1]},
                "level": self.level, "weaker_best": self.weaker_best,
                "epochs_to_level": {"transfer": self.epochs[0], "scratch": self.epochs[1]}}


def _val(e) -> float:
    return e["val_accuracy"] if isinstance(e, dict) else e.val_accuracy


def _epochs(n: int | None) -> str:
    return "never" if n is None else f"{n} epoch{'s' * (n != 1)}"


def ahead(gap: float) -> str:
    """"transfer", "scratch" or "even" for a test-accuracy gap (transfer minus scratch)."""
    return "transfer" if gap >= MARGIN else "scratch" if gap <= -MARGIN else "even"


def cause(gap: float, *, per_class: float, body_frozen: bool, fit: SourceFit | None, head: HeadStart,
          trains: str = "every layer") -> tuple[str, str]:
    """``(key, sentence)``: why the arms ended as they did, from what was measured. ``trains``: what
    the transfer arm trains ("every layer", or its live groups with the frozen ones named).

    Keys: ``frozen-body`` (scratch ahead of a body frozen in whole or in part), ``far-source``
    (scratch ahead, the source's features measured no better than random), ``enough-data``
    (scratch caught up with or passed a body training whole), ``little-data`` (transfer ahead on
    little data), ``source-features`` (transfer ahead on more data), ``frozen-matches`` (a frozen
    body level with scratch).
    """
    n = f"{per_class:g} images per class"
    feats = f" ({fit.words()})" if fit else ""
    side, whole = ahead(gap), trains == "every layer" and not body_frozen
    if side == "scratch" and not whole:
        what = "'s body is frozen, so only its head learns" if body_frozen else f" trains only {trains}"
        return "frozen-body", (f"The transfer run{what}, while scratch trains every layer: {n} were enough "
                               f"for scratch to learn features of its own. Fine-tune every layer (preset full) "
                               f"to compare like with like.")
    if side == "scratch" and fit is not None and fit.distance == "far":
        return "far-source", (f"The source is far from this task: {fit.words()}. With {n}, scratch learns "
                              f"better features than it brings.")
    if side == "transfer" and per_class <= LITTLE_DATA:
        return "little-data", (f"Little data: {n} are too few for scratch to learn good features, and the "
                               f"source brings them{feats}. {_start(head, body_frozen)} after one epoch.")
    if side == "transfer":
        return "source-features", (f"The source's starting weights{feats}: even with {n}, scratch ends "
                                   f"{abs(gap) * 100:.1f} points behind.")
    if side == "even" and not whole:
        return "frozen-matches", (f"The source's features, {'frozen' if body_frozen else f'training only {trains}'}"
                                  f", do as well as every layer trained from scratch on {n}{feats}.")
    chance = f" A {abs(gap) * 100:.1f}-point gap from one seed each may also be chance." if side == "scratch" else ""
    speed = (f" The source's advantage is speed: {head.after_one[0]:.1%} vs {head.after_one[1]:.1%} after one "
             f"epoch." if head.after_one[0] > head.after_one[1] else "")
    return "enough-data", (f"Both runs train every layer, so only the starting weights differ{feats}: with {n}, "
                           f"scratch had enough data to catch up.{speed}{chance}")


def _start(head: HeadStart, frozen: bool) -> str:
    """"It starts ahead: 88.8% vs 9.8%", or that it does not, as the first epoch says."""
    t1, s1 = f"{head.after_one[0]:.1%}", f"{head.after_one[1]:.1%}"
    if head.after_one[0] > head.after_one[1]:
        return f"{'Even with only its head training, it' if frozen else 'It'} starts ahead: {t1} vs {s1}"
    return f"It does not start ahead ({t1} vs {s1}) but ends ahead"


# -- the data-efficiency curve in one sentence ----------------------------------------------------------
def _shot(k) -> str:
    return "all" if k is None else str(k)


def curve_sentence(results: list[dict]) -> str:
    """Who leads at which samples per class, and where lines cross, from :meth:`Curve.results` rows."""
    shots = sorted({r["shots"] for r in results}, key=lambda k: float("inf") if k is None else k)
    acc = {(r["shots"], r["strategy"]): r["accuracy"] for r in results}
    strategies = list(dict.fromkeys(r["strategy"] for r in results))
    if not shots or not strategies:
        return "No run finished: nothing to conclude."
    leaders = [max(strategies, key=lambda s: acc.get((k, s), -1.0)) for k in shots]
    runs, i = [], 0
    while i < len(shots):  # consecutive shot counts with one leader
        j = i
        while j + 1 < len(shots) and leaders[j + 1] == leaders[i]:
            j += 1
        span = _shot(shots[i]) if i == j else f"{_shot(shots[i])} to {_shot(shots[j])}"
        runs.append(f"{leaders[i]} at {span} per class ({acc[(shots[i], leaders[i])]:.1%} at {_shot(shots[i])})")
        i = j + 1
    said = "Best: " + "; ".join(runs) + "."
    crossings = [_crossing(a, b, shots, acc) for x, a in enumerate(strategies) for b in strategies[x + 1:]]
    crossings = [c for c in crossings if c]
    return said + (" " + " ".join(crossings) if crossings else
                   (" The lines do not cross." if len(strategies) > 1 and len(shots) > 1 else ""))


def semi_sentence(results: list[dict], method: str) -> str:
    """What the unlabelled images bought at each shot count (semi-supervised against the linear
    probe), and, where they did not help, the cause the numbers show: how many of its labels were right."""
    probe = {r["shots"]: r["accuracy"] for r in results if r["strategy"] == "linear-probe"}
    method, out = method.replace("-", " "), []
    for r in results:
        if r["strategy"] != SEMI or r["shots"] not in probe:
            continue
        gap, k, n, right = r["accuracy"] - probe[r["shots"]], _shot(r["shots"]), r.get("unlabelled_used") or 0, \
            r.get("pseudo_label_accuracy")
        by = f"{n:,} unlabelled images labelled by {method}"
        labelled = by + ("" if right is None else f", {right:.0%} of them right")
        if not n:
            out.append(f"At {k} per class the unlabelled images were not used: {_why_none(method)}.")
        elif gap >= MARGIN:
            out.append(f"The unlabelled images added {gap * 100:+.1f} points at {k} per class ({labelled}).")
        else:
            verb = "did not help" if gap <= -MARGIN else "made no clear difference"  # within a point: about the same
            if right is not None and right < 0.8:  # the cause its numbers show
                out.append(f"The unlabelled images {verb} at {k} per class ({gap * 100:+.1f} points; {by}): "
                           f"only {right:.0%} of its labels were right, and the head learnt the "
                           f"{round(n * (1 - right)):,} wrong ones too.")
            else:
                out.append(f"The unlabelled images {verb} at {k} per class ({gap * 100:+.1f} points; {labelled}).")
    return " ".join(out)


def _why_none(method: str) -> str:
    """Why ``method`` (spaced) labelled no unlabelled image: its own selection rule."""
    if method == "self training":  # tlcore.training.semi: the same number from every class each round
        return ("self training takes as many labels of every class as the least sure class offers, and some class "
                f"had no prediction {THRESHOLD:.0%} sure")
    return f"{method} was {THRESHOLD:.0%} sure of none of them"


def _crossing(a: str, b: str, shots: list, acc: dict) -> str:
    """Where ``a`` and ``b`` swap places, with both accuracies on each side."""
    pts = [(k, acc[(k, a)] - acc[(k, b)]) for k in shots if (k, a) in acc and (k, b) in acc]
    out = []
    for (k0, d0), (k1, d1) in zip(pts, pts[1:]):
        if d0 * d1 < 0:
            first, second = (a, b) if d1 > 0 else (b, a)
            out.append(f"{first} overtakes {second} between {_shot(k0)} and {_shot(k1)} per class "
                       f"({_shot(k0)}: {acc[(k0, first)]:.1%} vs {acc[(k0, second)]:.1%}; "
                       f"{_shot(k1)}: {acc[(k1, first)]:.1%} vs {acc[(k1, second)]:.1%}).")
    return " ".join(out)
