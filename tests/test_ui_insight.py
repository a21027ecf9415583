"""The Evaluate tab's look inside, through its functions: feature space, a clicked point, Grad-CAM."""
from __future__ import annotations

import dataclasses

import gradio as gr
import numpy as np
import pytest

from tlcore.config import RunConfig
from tlcore.data import load_dataset
from tlcore.training.suggest import suggested_for
from tlcore.training.train import train
from tlcore.ui import evaluate_insight, evaluate_tab
from tlcore.ui.session import RunRecord, Session

from conftest import BUNDLED, digit_canvas

RUN = "1-digits-from-mnist"


@pytest.fixture(scope="module")
def session():
    """A session with a digits run fine-tuned (all of it) from the bundled MNIST LeNet-5."""
    s = Session()
    data = load_dataset("digits")
    cfg = RunConfig(dataset="digits", weights=str(BUNDLED), preset="full", epochs=3)
    cfg = dataclasses.replace(cfg, **{k: v for k, v in suggested_for(cfg, len(data.train)).items()
                                      if k != "epochs"}).validate()
    folder = s.folder / RUN
    s.add_run(RunRecord(RUN, train(cfg, data=data, out=folder), data, folder))
    yield s
    s.cleanup()


@pytest.mark.parametrize("method", ["PCA", "t-SNE"])
def test_the_feature_space_shows_both_bodies_and_their_numbers(session, method):
    summary, fig = evaluate_insight.show_space(session, RUN, method)
    assert "5-NN accuracy" in summary and "lenet5-mnist" in summary and "→ after training" in summary
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == 2 and titles[0].startswith("before: lenet5-mnist") and titles[1].startswith("after")
    n_test = len(session.runs[RUN].data.test)
    for panel in ("x", "x2"):  # every test image once in each panel, every class in the legend once
        points = [t for t in fig.data if t.xaxis == panel]
        assert sum(len(t.x) for t in points) == n_test
    assert sorted(t.name for t in fig.data if t.showlegend) == [str(c) for c in range(10)]
    assert method.replace("-", "") in fig.layout.title.text.replace("-", "")


def test_a_clicked_point_shows_its_image(session):
    image, said = evaluate_insight.show_point(session, RUN, 5)
    assert image.shape[-1] == 3 and image.shape[0] >= 192 and said.startswith("Test image #5: class **")
    assert evaluate_insight.show_point(session, RUN, 10_000)[0] is None


def test_the_gallery_toggles_grad_cam_and_names_it(tmp_path):
    """On 32 px images (gray shapes) the gallery's images get their maps and the label says so."""
    from conftest import write_folder

    shapes = write_folder(tmp_path / "shapes", {"a": 12, "b": 12, "c": 12}, size=32, rgb=False)
    data = load_dataset(str(shapes))
    s, name = Session(), "1-shapes-lenet5"
    s.add_run(RunRecord(name, train(RunConfig(dataset=str(shapes), epochs=2), data=data, out=tmp_path / name), data,
                        tmp_path / name))
    evaluate_tab.show(s, name, "counts")
    s.gallery = list(range(len(data.test)))  # every test image, right or wrong
    plain = evaluate_tab._gallery(s, s.runs[name], np.array(s.gallery))  # (image, caption) pairs, as shown
    shown = evaluate_tab.toggle_gradcam(s, name, True)
    assert shown.label.startswith("Images · Grad-CAM: where the last convolutional layer looked")
    assert len(shown.value) == len(plain) > 0
    # The same images, now coloured: a gray image under a jet-coloured map is no longer gray.
    cams = evaluate_insight.gallery_pictures(s, s.runs[name], np.array(s.gallery))
    gray, cam = np.asarray(plain[0][0]), cams[0]
    assert gray.shape == cam.shape and np.all(gray[..., 0] == gray[..., 2]) and np.any(cam[..., 0] != cam[..., 2])
    again = evaluate_tab.toggle_gradcam(s, name, False)
    assert again.label == "Images"


def test_grad_cam_on_images_too_small_for_a_map_says_so_instead(session):
    """#26 item 5: on 8x8 digits the map painted the empty background; it is refused, in words."""
    evaluate_tab.show(session, RUN, "counts")
    with pytest.warns(UserWarning, match=r"These images are 8×8 pixels: .* none is drawn"):
        assert evaluate_tab.toggle_gradcam(session, RUN, True) is not None
    assert session.gradcam is False


def test_an_uploaded_image_gets_its_grad_cam_and_caption(session, tmp_path):
    path = tmp_path / "seven.png"
    digit_canvas("7").save(path)
    image, said = evaluate_insight.explain_upload(session, RUN, str(path))
    assert image.ndim == 3 and image.shape[-1] == 3
    assert "Grad-CAM: where the last convolutional layer looked for" in said
    with pytest.raises(gr.Error, match="Pick a run"):
        evaluate_insight.explain_upload(session, RUN, None)


@pytest.mark.parametrize("wrong,caption", [(0, "No test image is misclassified."), (1, "The most confident mistake."),
                                           (4, "The 4 most confident mistakes.")])
def test_the_gallery_caption_counts_its_mistakes(wrong, caption):
    """A perfect 2-class run said "The 0 most confident mistakes" over an empty gallery."""
    from tlcore.ui.evaluate_tab import _gallery_caption

    assert _gallery_caption(wrong).startswith(caption)
