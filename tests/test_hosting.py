"""Hosting on Hugging Face Spaces: the README's front matter is the Space's configuration."""
from __future__ import annotations

import re
import sys

import gradio

from conftest import ROOT


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    block = re.match(r"---\n(.*?)\n---\n", text, re.S).group(1)
    return {k.strip(): v.strip().strip('"') for k, v in (line.split(":", 1) for line in block.splitlines())}


def test_the_space_runs_the_gradio_and_python_the_tests_ran_with():
    """A card without sdk_version fails to build; one that names another Gradio runs untested code."""
    card = front_matter()
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py"
    assert card["sdk_version"] == gradio.__version__
    assert card["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    pinned = re.search(r"^gradio==([\w.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and pinned.group(1) == card["sdk_version"]  # what pip installs is what the Space runs
