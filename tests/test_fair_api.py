"""Fairness through the real app's API, two gradio_client sessions at once (issue #17): one training
queued or running per session, Stop reaching only its own session, each its own result, and a
session flooding /predict_digit refused beyond its share while another is served. On the test
session's one app server (conftest's ``app``): the end-to-end tests run one at a time, so nothing
else trains there meanwhile."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tlcore.ui import jobs

pytestmark = pytest.mark.slow

# /train's inputs after the session: epochs, batch, lr, optimizer, scheduler, body multiplier,
# label smoothing, augmentation, early stopping, seed (train_tab.FIELDS; the rest keep defaults).
LONG = (200, 64, 0.05, "sgd", "onecycle", 1.0, 0.1, "on", 0, 0)  # LeNet-5 from scratch: minutes on a CPU
SHORT = (2, 64, 0.1, "sgd", "onecycle", 1.0, 0.1, "off", 0, 1)


def client(url: str):
    from gradio_client import Client

    c = Client(url, verbose=False)
    c.predict("digits", None, 0, 0.1, 0, api_name="/load_dataset")
    c.predict("lenet5", "none", "", False, api_name="/choose_model")
    return c


def wait_until(check, timeout: float = 60) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_one_training_per_session_and_stop_reaches_only_its_own(app):
    """On a CPU one training runs at a time: B's waits behind A's, and B's Stop withdraws it; on
    a GPU (two at once) B's runs, and B's Stop stops it. Either way A's goes on, and each
    session ends with its own result."""
    from gradio_client.exceptions import ValidationError
    from gradio_client.utils import Status

    a, b = client(app.url), client(app.url)
    long_a = a.submit(*LONG, api_name="/train")
    assert wait_until(lambda: len(long_a.outputs()) > 0), "A's training never started"
    first_b = b.submit(*LONG, api_name="/train")
    # B's Start passes the validator when its join is answered, and takes its session's place as
    # its handler begins, at once (it then waits in the jobs' line); a Stop sent before that finds
    # nothing of B's to stop.
    assert wait_until(lambda: first_b.status().code not in (Status.STARTING, Status.JOINING_QUEUE)), \
        "B's training never reached the queue"
    with pytest.raises(ValidationError, match="already running or waiting for its turn"):
        a.submit(*SHORT, api_name="/train").result(timeout=30)  # refused as it arrives, not queued
    waits = jobs.SLOTS == 1
    # B's first output: "Waiting for its turn" on a CPU, its first epoch's progress on a GPU.
    assert wait_until(lambda: len(first_b.outputs()) > 0), "B's training never began to wait or run"
    said = b.predict(api_name="/stop")
    assert said.startswith("Stopped: the training waiting" if waits else "Stopping"), said
    time.sleep(2)
    assert not long_a.done(), "B's Stop ended A's training"
    if not waits:
        b_status = first_b.result(timeout=120)[3]  # stopped: B may Start again
    own_b = b.submit(*SHORT, api_name="/train")  # on a CPU at once (the withdrawn one ends at its turn)
    assert a.predict(api_name="/stop").startswith("Stopping")
    a_status = long_a.result(timeout=120)[3]
    assert a_status.startswith("**Stopped ") and "saved as run `1-digits-lenet5`" in a_status
    if waits:
        b_status = first_b.result(timeout=60)[3]
        assert b_status == f"**Not started:** {jobs.WITHDRAWN}"
    else:
        assert b_status.startswith("**Stopped ")
    b_out = own_b.result(timeout=180)
    b_runs = [c[0] for c in b_out[4]["choices"]]
    assert b_out[3].startswith("**Completed ") and "Completed 2 epochs" in b_out[3]
    assert b_runs == (["1-digits-lenet5"] if waits else ["1-digits-lenet5", "2-digits-lenet5"])


def drawing(path, size: int = 4000) -> str:
    """A seven on a big canvas: about 0.1 s to decode and scale on a CPU, so a flood's calls are
    still in flight as the next arrive (a 280 px one is answered in 2 ms, and a flood of them may
    never have more than five in flight)."""
    img = Image.new("L", (size, size), 255)
    s = size / 280
    ImageDraw.Draw(img).line([(80 * s, 60 * s), (200 * s, 60 * s), (120 * s, 240 * s)], fill=0, width=int(18 * s))
    img.save(path)
    return str(path)


def test_a_flood_of_predictions_is_refused_beyond_its_share(app, tmp_path):
    """Twenty calls at once from one session: a few run or wait, the rest are told why; another
    session's call meanwhile is answered."""
    from gradio_client import Client, handle_file

    png = handle_file(drawing(tmp_path / "seven.png"))
    flood, other = Client(app.url, verbose=False), Client(app.url, verbose=False)
    answers, errors = [], []

    def call():
        try:
            answers.append(flood.predict(png, api_name="/predict_digit"))
        except Exception as e:  # the refusals, as gradio_client raises them
            errors.append(str(e))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    mine = other.predict(png, api_name="/predict_digit")
    for t in threads:
        t.join(60)
    assert mine["label"] == "7" and len(answers) + len(errors) == 20
    assert answers and all(a["label"] == "7" for a in answers)
    assert errors and all("calls running or waiting" in e for e in errors), errors[:2]
    np.testing.assert_allclose([c["confidence"] for c in mine["confidences"]][:1],
                               [c["confidence"] for c in answers[0]["confidences"]][:1])


def test_a_cancelled_waiting_training_gives_its_place_back(app):
    """A client that cancels its training while it waits for its turn (gradio_client's
    job.cancel()) frees its session's place: its next Start is admitted, not refused as "already
    waiting", and the cancelled one never runs. (Waiting in Gradio's own queue, the handler never
    ran, so nothing could give the place back until Stop or the tab closed.)"""
    from gradio_client.exceptions import ValidationError

    if jobs.SLOTS > 1:
        pytest.skip("two jobs run at once on a GPU: a second session's training does not wait")
    a, b = client(app.url), client(app.url)
    long_a = a.submit(*LONG, api_name="/train")
    assert wait_until(lambda: len(long_a.outputs()) > 0), "A's training never started"
    waiting_b = b.submit(*LONG, api_name="/train")
    assert wait_until(lambda: any("Waiting for its turn" in o[0] for o in waiting_b.outputs())), \
        "B's training never said it waits"
    with pytest.raises(ValidationError, match="already running or waiting for its turn"):
        b.submit(*SHORT, api_name="/train").result(timeout=30)  # its place is taken while it waits
    waiting_b.cancel()
    own_b = None
    for _ in range(20):  # the cancel reaches the server in a moment: until then the place is taken
        try:
            own_b = b.submit(*SHORT, api_name="/train")
            assert wait_until(lambda: len(own_b.outputs()) > 0 or own_b.done(), 10)
            own_b.outputs() or own_b.result(timeout=1)  # a refusal raises here
            break
        except ValidationError:
            own_b = None
            time.sleep(0.25)
    assert own_b is not None, "B's cancelled training still holds its session's place"
    assert "Waiting for its turn" in own_b.outputs()[0][0]  # admitted, and waits behind A's
    assert a.predict(api_name="/stop").startswith("Stopping")
    assert long_a.result(timeout=120)[3].startswith("**Stopped ")
    b_out = own_b.result(timeout=180)
    assert b_out[3].startswith("**Completed ") and [c[0] for c in b_out[4]["choices"]] == ["1-digits-lenet5"]
