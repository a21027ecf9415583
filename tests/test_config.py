"""One field, one rule: RunConfig's knobs make the CLI's flags and the app's inputs, and check both."""
from __future__ import annotations

import html

import dataclasses

import pytest

from tlcore.cli import build_parser
from tlcore.config import RunConfig
from tlcore.ui import fields, train_tab
from tlcore.ui.data_tab import load
from tlcore.ui.session import Session

FIELDS = [f.name for f in dataclasses.fields(RunConfig)]


def _train_flags() -> dict:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {o: a for a in sub.choices["train"]._actions for o in a.option_strings}


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_is_a_train_flag_with_its_knobs_help_and_default(name):
    knob, flag = RunConfig.knob(name), _train_flags()["--" + name.replace("_", "-")]
    assert flag.help.replace("%%", "%").startswith(knob.help)
    assert flag.default == (None if knob.suggested else getattr(RunConfig, name))


@pytest.mark.parametrize("name", train_tab.FIELDS)
def test_the_train_tabs_inputs_are_the_knobs(name):
    knob, comp = RunConfig.knob(name), fields.component(name)
    assert comp.label == knob.label and comp.info == knob.help
    if knob.kind == "choice":
        assert [c[1] for c in comp.choices] == [knob.auto] * knob.optional + list(knob.choices)
    if knob.slider:
        assert (comp.minimum, comp.maximum, comp.step) == knob.slider
        assert knob.check(name, knob.slider[1]) == knob.slider[1]  # the app never offers an invalid value


def test_the_train_endpoint_names_its_inputs_after_the_fields_in_a_stable_order():
    """/train's inputs as gradio_client callers send them: the first ten in the order they always
    had, newer ones after, each with a default so that a shorter call still works."""
    from tlcore.ui import build_app

    params = build_app().get_api_info()["named_endpoints"]["/train"]["parameters"]
    assert [p["parameter_name"] for p in params] == list(train_tab.FIELDS)
    assert train_tab.FIELDS[:10] == ("epochs", "batch_size", "lr", "optimizer", "scheduler", "body_lr_mult",
                                     "label_smoothing", "augment", "early_stopping", "seed")
    assert all(p["parameter_has_default"] for p in params)


@pytest.mark.parametrize("args,says", [
    ((0, 1.5, 0), "Validation fraction (val_fraction) must be a fraction between 0 and 1 (exclusive), got 1.5."),
    ((-2, 0.1, 0), "samples_per_class must be a whole number > 0 and <= 100000, got -2."),
    ((0, 0.1, 2.5), "Seed must be a whole number >= 0"),
])
def test_the_data_tab_checks_with_the_runs_rules(args, says):
    session = Session()
    out = load(session, "digits", None, *args)
    assert says in html.unescape(out[1]) and session.dataset is None  # Markdown: "<=" arrives as "&lt;="


def test_a_switch_label_means_its_value_and_anything_else_is_refused_by_runconfig():
    auto = RunConfig.knob("augment").auto
    assert [fields.value("augment", v) for v in (auto, "on", "off")] == [None, True, False]
    with pytest.raises(Exception, match=r"Augmentation \(augment\) must be true, false or None"):
        RunConfig(augment=fields.value("augment", "sometimes")).validate()


def test_a_change_that_keeps_the_recipe_keeps_what_the_user_typed():
    """The page opening (digits, a linear probe on the bundled MNIST model) suggests what the tab
    already shows: nothing is overwritten. A change of recipe (random weights, every layer
    training) fills the settings it moves."""
    from tlcore.data import load_dataset
    from tlcore.models import create_backbone

    session = Session(dataset=load_dataset("digits"))
    session.preview = create_backbone("lenet5", num_classes=10)
    assert all(v == {"__type__": "update"} for v in train_tab.resuggest(session))  # gr.skip(): left as typed
    session.weights, session.frozen = "none", []
    changed = train_tab.resuggest(session)
    assert dict(zip(train_tab.SUGGESTED, changed))["optimizer"] == "sgd"
    assert train_tab.suggest(session) == list(session.suggested.values())  # the button always fills all
