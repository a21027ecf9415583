"""The Lesson tab taken as a class would: a fresh app, a fresh browser at 1280x720, every step's
button pressed in turn; the seconds from the first click to the last sentence, each step's time,
and a screenshot of each step with its button in view (to look at).

Run: ``python benchmarks/lesson_in_browser.py [--shots DIR]`` (starts the real app on a free port
and Debian's Chromium). The goal (issue #25): the whole lesson within 300 s of its first click on
this 2-core CPU.

Last measured (2026-12-04, the project's 2-core CPU VM, nothing else running), seven steps:

    whole lesson: 66.0 s from the first click (0.22x the 300 s goal); step 1 7.2 s, step 2 6.1 s,
    step 3 25.8 s, step 4 4.5 s, step 5 1.2 s, step 6 6.8 s, step 7 1.1 s
    (an earlier run that stopped at step 6: 57.1 s; step 6 6.6 s)

Before step 6 (the images nobody labelled) existed (2026-12-03), six steps: 49.1 s and 47.3 s.

Each step's button was in view at 1280x720 in every screenshot.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from e2e_server import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402
from tlcore.studies.lesson import STEPS  # noqa: E402

GOAL_S = 300.0
VIEW = {"width": 1280, "height": 720}


def walk(page, shots: Path) -> list[tuple[int, float]]:
    """Press each step's button, wait for its sentence, screenshot it; (step, seconds) each."""
    took = []
    for k in range(1, len(STEPS) + 1):
        page.locator(f"#lesson-go-{k}").wait_for(timeout=30_000)
        box = page.locator(f"#lesson-go-{k}").bounding_box()
        assert box and box["y"] + box["height"] <= VIEW["height"], f"step {k}'s button is below the fold"
        t = time.monotonic()
        page.locator(f"#lesson-go-{k}").click()
        said = page.locator(f"#lesson-said-{k}")
        said.locator("small").wait_for(timeout=600_000)  # "Measured just now in ..." under the step's sentence
        took.append((k, time.monotonic() - t))
        page.wait_for_timeout(800)  # the chart draws
        page.screenshot(path=str(shots / f"lesson-step-{k}.png"))
        page.screenshot(path=str(shots / f"lesson-step-{k}-full.png"), full_page=True)
        print(f"step {k}: {took[-1][1]:.1f} s  {said.inner_text()[:160]!r}", flush=True)
        if k < len(STEPS):
            page.locator(f"#lesson-next-{k}").click()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shots", default=str(Path(tempfile.gettempdir()) / "tlcore-lesson-shots"))
    ap.add_argument("--locale", default="en-US", help="the browser's language (zh-CN: the lesson in Chinese)")
    args = ap.parse_args()
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = AppServer(Path(tmp), {})
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_context(viewport=VIEW, locale=args.locale).new_page()
                page.goto(server.url)
                t0 = time.monotonic()
                took = walk(page, shots)
                total = time.monotonic() - t0
                browser.close()
        finally:
            server.close()
    print(f"whole lesson: {total:.1f} s from the first click ({total / GOAL_S:.2f}x the {GOAL_S:.0f} s goal); "
          + ", ".join(f"step {k} {s:.1f} s" for k, s in took) + f"; screenshots in {shots}")


if __name__ == "__main__":
    main()
