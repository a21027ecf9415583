"""Hosting on Hugging Face Spaces: the README's front matter is the Space's configuration.

What the front matter pins is checked against itself and against what the Space installs, not
against the interpreter running the tests: a developer on another Python runs these too."""
from __future__ import annotations

import re
from importlib.metadata import metadata

import gradio
from packaging.specifiers import SpecifierSet

from conftest import ROOT


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    block = re.match(r"---\n(.*?)\n---\n", text, re.S).group(1)
    return {k.strip(): v.strip().strip('"') for k, v in (line.split(":", 1) for line in block.splitlines())}


def test_the_space_runs_the_gradio_the_tests_ran_with():
    """A card without sdk_version fails to build; one that names another Gradio runs untested code."""
    card = front_matter()
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py"
    assert card["sdk_version"] == gradio.__version__
    pinned = re.search(r"^gradio==([\w.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and pinned.group(1) == card["sdk_version"]  # what pip installs is what the Space runs


def test_the_spaces_python_is_pinned_and_runs_that_gradio():
    """The Space's Python is written as Spaces reads it ("3.11": major.minor, quoted so YAML keeps
    it a string, or 3.10 would read as 3.1) and is one the pinned Gradio installs on."""
    version = front_matter()["python_version"]
    assert re.fullmatch(r"3\.\d{1,2}", version), f"python_version must be major.minor, got {version!r}"
    assert re.search(rf'^python_version: "{re.escape(version)}"$', (ROOT / "README.md").read_text(), re.M)
    requires = metadata("gradio")["Requires-Python"]
    assert f"{version}.0" in SpecifierSet(requires), f"gradio {gradio.__version__} needs Python {requires}"
