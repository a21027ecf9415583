"""The lesson's conclusions, each written from its step's numbers (and quoting them).

Pure functions of the ``numbers`` dicts :mod:`tlcore.studies.lesson` measures, so what each
sentence claims can be tested against any numbers: a head start is called one only when the
numbers show it, a regularizer is said to keep what it measurably kept.
"""
from __future__ import annotations

WITHIN = 1.0  # points: scratch within this much of fine-tuning has "caught up"


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _k(v) -> str:
    return f"{v} per class" if v != "all" else "all the data"


def source(n: dict) -> str:
    """Step 1: how well the source reads its own task."""
    trained = f" trained on {n['train_images']:,} MNIST digits" if n.get("train_images") else " trained on MNIST"
    whole = (f", and {_pct(n['mnist_test_accuracy'])} of all {n['mnist_test_images']:,} MNIST test digits"
             if n.get("mnist_test_accuracy") is not None else "")
    return (f"The source is the bundled {n['model']} model{trained}. It reads {_pct(n['replay_accuracy'])} of the "
            f"{n['replay_images']} MNIST test digits kept with it{whole}: it knows its task.")


def small_task(n: dict) -> str:
    """Step 2: the head start, and where the runs ended."""
    t1, s1 = n["after_one_epoch"]["transfer"], n["after_one_epoch"]["scratch"]
    lead = "ahead" if t1 > s1 else "behind" if t1 < s1 else "level"
    end = {"transfer": "The MNIST start is still ahead at the end", "scratch": "Scratch ends ahead",
           "even": "They end about level"}[n["ahead"]]
    e_t, e_s = n["epochs_to_level"]["transfer"], n["epochs_to_level"]["scratch"]
    return (f"With {n['per_class']} digits per class and every layer training in both runs, after one epoch the "
            f"model from MNIST reads {_pct(t1)} of the validation digits and the one from scratch {_pct(s1)}: "
            f"transfer is {lead} by {abs(t1 - s1) * 100:.1f} points. {end}: {_pct(n['test']['transfer'])} vs "
            f"{_pct(n['test']['scratch'])} on the test split ({n['gap_points']:+.1f} points). To reach "
            f"{_pct(n['level'])} it took {_epochs(e_t)} from MNIST and {_epochs(e_s)} from scratch.")


def _epochs(e) -> str:
    return "never" if e is None else f"{e} epoch{'s' * (e != 1)}"


def catches_up_at(per_class: list, fine_tune: list[float], scratch: list[float], within: float = WITHIN):
    """The smallest shot count from which on scratch stays within ``within`` points of fine-tuning
    (or ahead); None if it never does."""
    at = None
    for k, f, s in reversed(list(zip(per_class, fine_tune, scratch))):
        if s < f - within / 100:
            break
        at = k
    return at


def how_much_data(n: dict) -> str:
    """Step 3: where scratch catches up, and the widest gap before it."""
    pts = list(zip(n["per_class"], n["fine-tune"], n["scratch"]))
    k_gap, f_gap, s_gap = max(pts, key=lambda p: p[1] - p[2])
    widest = f"fine-tuning's widest lead is at {_k(k_gap)}: {_pct(f_gap)} vs {_pct(s_gap)}"
    at = n["catches_up_at"]
    if at is None:
        k, f, s = pts[-1]
        return (f"Scratch does not catch up within {_k(k)}: fine-tuning still leads there, {_pct(f)} vs {_pct(s)} "
                f"({(f - s) * 100:.1f} points); {widest}.")
    k, f, s = next(p for p in pts if p[0] == at)
    if at == pts[0][0]:
        return (f"Scratch is within {n['within_points']:g} point{'s' * (n['within_points'] != 1)} of fine-tuning "
                f"from the smallest count measured, {_k(k)} ({_pct(s)} vs {_pct(f)}): here data is no longer scarce.")
    return (f"Scratch catches up at {_k(k)} ({_pct(s)} vs {_pct(f)} for fine-tuning, within "
            f"{n['within_points']:g} point); below that the source pays: {widest}.")


def forgetting(n: dict) -> str:
    """Step 4: what plain fine-tuning lost of MNIST, what each keeper kept, and the suggested settings."""
    s, plain = n["settings"], n["after"]["plain"]
    said = [f"Fine-tuning every layer at lr {s['lr']:g} (the body at {s['body_lr_mult']:g}x) for "
            f"{_epochs(s['epochs'])} took MNIST from {_pct(n['source_before'])} to {_pct(plain)} of its {n['source_images']} test "
            f"digits ({n['lost_points']:.1f} points lost) while learning digits ({_pct(n['target_test']['plain'])})."]
    for keeper, pts in n["kept_points"].items():
        verb = "kept" if pts > 0 else "did not keep more:"
        said.append(f"{keeper} {verb} {_pct(n['after'][keeper])} ({pts:+.1f} points against plain, digits "
                    f"{_pct(n['target_test'][keeper])}).")
    g = n["suggested"]
    if g.get("after") is not None:
        said.append(f"At step 2's suggested settings (the body at {g['body_lr_mult']:g}x of lr {g['lr']:.3g}) MNIST "
                    f"went from {_pct(g['before'])} to {_pct(g['after'])}: forgetting grows with how far the body "
                    f"moves.")
    return " ".join(said)


def why(n: dict) -> str:
    """Step 5: the feature spaces' 5-NN accuracies."""
    rnd = f"; with random weights, {_pct(n['random_knn'])}" if n.get("random_knn") is not None else ""
    better = n.get("random_knn") is not None and n["source_knn"] > n["random_knn"]
    reason = (" The MNIST body's features already separate the digits: that is the head start of step 2."
              if better else "")
    moved = "closer together by class" if n["after_knn"] > n["source_knn"] else "no better by class"
    return (f"Before any training on digits, the MNIST body puts {_pct(n['source_knn'])} of the {n['images']} "
            f"digits test images among 5 neighbours of their class{rnd}.{reason} After step 4's fine-tune at lr "
            f"{n['after_lr']:g}, {_pct(n['after_knn'])}: the body moved, its features {moved} "
            f"(and MNIST fell to {_pct(n['after_source_task'])}).")


def unlabelled(n: dict) -> str:
    """Step 6: the probe with and without the images whose labels were hidden, and what its sentence found."""
    seeds = f"mean of {n['seeds']} seeds" if n["seeds"] > 1 else "one seed"
    pairs = "; ".join(f"{_k(k)}, {_pct(p)} alone and {_pct(s)} with the rest"
                      for k, p, s in zip(n["per_class"], n["probe"], n["semi"]))
    return (f"Of the {n['training_images']:,} training digits, only {' or '.join(map(str, n['per_class']))} per class "
            f"kept their labels; {n['method'].replace('-', ' ')} over the MNIST body's features labelled the rest, "
            f"and a linear probe trained on both ({seeds}): {pairs}. {n['sentence']}")


def your_turn(n: dict) -> str:
    """Step 7: hand over, with what the lesson found."""
    at = n["catches_up_at"]
    caught = (f"scratch caught up at {_k(at)}" if at is not None else
              f"scratch had not caught up at {_k(n['largest_per_class'])}")
    return (f"Your turn: here starting from {n['source']} was {n['gap_points']:+.1f} points at {n['per_class']} "
            f"per class and {caught}. Load your own images on the Data tab (a zip of class folders), choose a "
            f"source on the Model tab and press Transfer vs scratch on the Compare tab: how many images per class "
            f"do you have, and where does your data fall?")
