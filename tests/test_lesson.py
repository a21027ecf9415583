"""The lesson (issue #25): seven steps, each concluded from its own numbers, and ``python -m tlcore lesson``.

The conclusions are tested from numbers (any numbers, not only the ones this machine measures):
every percentage a conclusion states is one of its step's numbers, and what it claims (ahead or
behind, caught up or not, kept or not) follows them.
"""
from __future__ import annotations

import json
import re

import pytest
import torch

from tlcore.errors import TLCoreError
from tlcore.studies import lesson_words as words
from tlcore.studies.lesson import STEPS, lesson


SOURCE = {"model": "lenet5", "trained_on": "MNIST", "train_images": 54001, "replay_images": 500,
          "replay_accuracy": 0.996, "mnist_test_images": 10000, "mnist_test_accuracy": 0.9945}
SMALL = {"per_class": 5, "after_one_epoch": {"transfer": 0.888, "scratch": 0.098}, "test": {"transfer": 0.978,
         "scratch": 0.922}, "gap_points": 5.6, "ahead": "transfer", "level": 0.85, "epochs_to_level":
         {"transfer": 1, "scratch": 14}}
DATA = {"per_class": [5, 20, "all"], "fine-tune": [0.978, 0.985, 0.991], "scratch": [0.922, 0.951, 0.984],
        "within_points": 1.0, "catches_up_at": "all"}
FORGET = {"settings": {"lr": 0.1, "body_lr_mult": 1.0, "epochs": 5, "preset": "full"}, "source_images": 500,
          "source_before": 0.996, "after": {"plain": 0.374, "L2-SP 0.03": 0.83, "LwF 1": 0.60},
          "target_test": {"plain": 0.989, "L2-SP 0.03": 0.997, "LwF 1": 0.989}, "lost_points": 62.2,
          "kept_points": {"L2-SP 0.03": 45.6, "LwF 1": 22.6},
          "suggested": {"body_lr_mult": 0.1, "lr": 0.00375, "before": 0.996, "after": 0.994}}
WHY = {"images": 359, "random_knn": 0.872, "source_knn": 0.969, "after_knn": 0.983, "after_lr": 0.1,
       "after_source_task": 0.374}
UNLABELLED = {"per_class": [1, 5], "method": "label-spreading", "seeds": 3, "training_images": 1295,
              "probe": [0.8811, 0.9564], "semi": [0.9173, 0.9607], "unlabelled_used": [1008, 1202],
              "pseudo_label_accuracy": [0.93, 0.96], "sentence": "The unlabelled images added +3.6 points at 1 per class."}
TURN = {"per_class": 5, "gap_points": 5.6, "catches_up_at": "all", "largest_per_class": "all", "source": "lenet5-mnist"}


def _floats(x):
    """Every number in a numbers dict, however deep."""
    if isinstance(x, dict):
        for v in x.values():
            yield from _floats(v)
    elif isinstance(x, list):
        for v in x:
            yield from _floats(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield x


def assert_told_from(numbers: dict, conclusion: str) -> None:
    """Every percentage the conclusion states is one of the numbers; at least one is stated."""
    stated = re.findall(r"\d+\.\d%", conclusion)
    known = {f"{v:.1%}" for v in _floats(numbers)}
    assert stated and set(stated) <= known, (set(stated) - known, conclusion)


@pytest.mark.parametrize("tell,numbers", [(words.source, SOURCE), (words.small_task, SMALL),
                                          (words.how_much_data, DATA), (words.forgetting, FORGET),
                                          (words.why, WHY), (words.unlabelled, UNLABELLED)])
def test_every_percentage_a_conclusion_states_is_its_own(tell, numbers):
    assert_told_from(numbers, tell(numbers))


def test_the_source_is_measured_on_mnist_when_present_and_on_its_sample_offline():
    assert "99.6% of the 500" in words.source(SOURCE) and "99.5% of all 10,000" in words.source(SOURCE)
    offline = words.source({**SOURCE, "mnist_test_images": None, "mnist_test_accuracy": None})
    assert "99.6% of the 500" in offline and "10,000" not in offline


@pytest.mark.parametrize("t1,s1,says", [(0.888, 0.098, "transfer is ahead by 79.0 points"),
                                        (0.30, 0.45, "transfer is behind by 15.0 points")])
def test_a_head_start_is_called_one_only_when_the_numbers_show_it(t1, s1, says):
    told = words.small_task({**SMALL, "after_one_epoch": {"transfer": t1, "scratch": s1}})
    assert says in told and f"{t1:.1%}" in told and f"{s1:.1%}" in told
    assert "1 epoch from MNIST and 14 epochs from scratch" in told


@pytest.mark.parametrize("ft,sc,at", [
    ([0.978, 0.985, 0.991], [0.922, 0.951, 0.984], "all"),  # within a point only with all the data
    ([0.978, 0.985, 0.991], [0.922, 0.980, 0.984], 20),  # from 20 on
    ([0.978, 0.985, 0.991], [0.922, 0.980, 0.950], None),  # level at 20, behind again at all: not caught up
    ([0.978, 0.985, 0.991], [0.975, 0.985, 0.995], 5),  # from the start
])
def test_where_scratch_catches_up(ft, sc, at):
    assert words.catches_up_at([5, 20, "all"], ft, sc) == at
    told = words.how_much_data({**DATA, "fine-tune": ft, "scratch": sc, "catches_up_at": at})
    assert_told_from({"fine-tune": ft, "scratch": sc}, told)
    if at is None:
        assert "does not catch up" in told
    elif at == 5:
        assert "from the smallest count measured" in told
    else:
        assert f"catches up at {'all the data' if at == 'all' else f'{at} per class'}" in told


def test_forgetting_is_told_with_what_each_keeper_kept():
    told = words.forgetting(FORGET)
    assert "from 99.6% to 37.4%" in told and "62.2 points lost" in told
    assert "L2-SP 0.03 kept 83.0% (+45.6 points" in told and "LwF 1 kept 60.0% (+22.6 points" in told
    assert "from 99.6% to 99.4%" in told  # the suggested settings: nearly nothing forgotten
    useless = words.forgetting({**FORGET, "after": {**FORGET["after"], "LwF 1": 0.374},
                                "kept_points": {"L2-SP 0.03": 45.6, "LwF 1": 0.0}})
    assert "LwF 1 did not keep more" in useless


def test_why_names_the_head_start_only_when_the_source_separates_better_than_random():
    assert "already separate the digits" in words.why(WHY)
    assert "already separate" not in words.why({**WHY, "source_knn": 0.85})
    assert "already separate" not in words.why({**WHY, "random_knn": None})


def test_the_unlabelled_step_says_both_accuracies_at_each_count_and_its_finding():
    told = words.unlabelled(UNLABELLED)
    assert "only 1 or 5 per class kept their labels" in told and "(mean of 3 seeds)" in told
    assert "1 per class, 88.1% alone and 91.7% with the rest; 5 per class, 95.6% alone and 96.1% with" in told
    assert told.endswith(UNLABELLED["sentence"])


def test_your_turn_hands_over_with_what_the_lesson_found():
    told = words.your_turn(TURN)
    assert "+5.6 points at 5 per class" in told and "caught up at all the data" in told
    assert "had not caught up at all the data" in words.your_turn({**TURN, "catches_up_at": None})


def test_the_lesson_command_prints_one_json_object(cli, tmp_path):
    """``python -m tlcore lesson --json --quick`` in this process: two epochs a run, every step there,
    each concluded from its own numbers; offline, with no MNIST in the data folder."""
    threads = torch.get_num_threads()
    r = cli("lesson", "--json", "--quick", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert torch.get_num_threads() == threads  # one thread while it ran, the process's own after
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [s["name"] for s in out["steps"]] == list(STEPS)
    assert out["seconds"] >= sum(s["seconds"] for s in out["steps"]) - 0.5
    for step in out["steps"]:
        assert set(step) == {"name", "seconds", "numbers", "conclusion"} and step["conclusion"]
        if step["name"] != "your turn":
            assert_told_from(step["numbers"], step["conclusion"])
    assert out["steps"][0]["numbers"]["mnist_test_accuracy"] is None  # the bundled sample spoke for MNIST
    small = out["steps"][1]["numbers"]
    assert small["after_one_epoch"]["transfer"] > small["after_one_epoch"]["scratch"]  # even in two epochs
    unl = out["steps"][5]["numbers"]
    assert unl["per_class"] == [1, 5] and all(n > 0 for n in unl["unlabelled_used"]) and unl["seeds"] == 1
    assert "step 2 of 7: a new small task" in r.stderr and "run 1 of 2 (from lenet5-mnist)" in r.stderr


@pytest.mark.parametrize("threads", [0, 1.5, "2"])
def test_a_bad_thread_count_is_refused_by_name(threads):
    with pytest.raises(TLCoreError, match=f"threads must be a whole number >= 1 .*got {threads!r}"):
        lesson(threads=threads)


def test_a_lesson_taken_a_step_at_a_time_runs_the_steps_before_and_each_once(tmp_path):
    """The Lesson tab's way: step 2's button runs step 1 first; asking again runs nothing; a stopped
    step returns None and the next click goes on from where it stopped."""
    from tlcore.events import StopToken
    from tlcore.studies.lesson import LessonRun

    heard, stop = [], StopToken()
    run = LessonRun(quick=True, data_dir=str(tmp_path), progress=heard.append)
    with pytest.raises(TLCoreError, match="steps 1 to 7, got 8"):
        run.step(8)
    second = run.step(2)
    assert [s.name for s in run.steps] == list(STEPS[:2]) and second is run.steps[1]
    assert heard[0] == "step 1 of 7: the source" and "step 2 of 7: a new small task" in heard
    assert_told_from(second.numbers, second.conclusion)
    assert run.done["duel"].transfer.history and len(run.done["source examples"][0]) == 10
    n = len(heard)
    assert run.step(1) is run.steps[0] and len(heard) == n  # done: nothing runs again
    stop.stop()
    run.use(stop=stop)
    assert run.step(3) is None and run.stopped and len(run.steps) == 2
    run.use(stop=StopToken())
    assert run.step(3).name == "how much data" and not run.stopped
