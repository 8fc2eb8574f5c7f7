"""The playground on the embedded prompt-conditioned checkpoint (``assets/cosmos-story-cpu``), in a real browser.

``python app.py --checkpoint assets/cosmos-story-cpu`` runs as a subprocess; chromium types a story opening
into the Generate and Denoising trajectory tabs and checks the continuations appear behind it. The shared
browser machinery (skips without chromium, console checks, screenshots) is test_app_browser's.
"""

from __future__ import annotations

import re

import pytest

from app.context import STORY_CHECKPOINT
from live_app import module_fixture
from test_app_browser import RUN_MS, UI_MS, browser, expect, open_session, set_number, table_cells  # noqa: F401

PROMPT = "One day, Tom and his sister went to the beach."

live_app = module_fixture(args=["--checkpoint", STORY_CHECKPOINT])


@pytest.fixture
def session(browser, live_app):  # noqa: F811  (browser: the fixture imported above)
    yield from open_session(browser, live_app.url)


def test_generate_continues_a_prompt(session):
    panel = session.tab("Generate")
    box = panel.get_by_label("Prompt (optional)")
    expect(box).to_be_enabled()
    expect(panel.get_by_text("This checkpoint is unconditional")).to_have_count(0)
    box.fill(PROMPT)
    set_number(panel, "number input for Number of samples", 2)
    set_number(panel, "number input for Steps", 20)
    set_number(panel, "number input for Guidance scale", 2)
    panel.get_by_role("button", name="Generate", exact=True).click()
    expect(panel.get_by_text(re.compile(r"^2 samples x 20 steps \(SDE, seed 0, guidance 2\) in \d+\.\d\d s"))
           ).to_be_visible(timeout=RUN_MS)
    texts = table_cells(panel, 1).all_inner_texts()
    assert len(texts) == 2
    for text in texts:                                   # "prompt → continuation", a non-empty continuation
        head, _, continuation = text.partition(" → ")
        assert head == PROMPT and continuation.strip(), text
    session.screenshot("story-generate")
    session.check_console()


def test_trajectory_shows_the_prompt_in_front(session):
    panel = session.tab("Denoising trajectory")
    panel.get_by_label("Prompt (optional)").fill(PROMPT)
    set_number(panel, "number input for Steps", 10)
    panel.get_by_role("button", name="Run the trajectory").click()
    expect(panel.get_by_text("final sample:")).to_be_visible(timeout=RUN_MS)
    expect(panel.get_by_text(re.compile(r"step 10 / 10 · σ\(t\) = "))).to_be_visible()
    highlighted = panel.get_by_test_id("highlighted-text")
    expect(highlighted.get_by_test_id("highlighted-text:category-legend")).to_contain_text("prompt")
    expect(highlighted.locator(".token-container").first).to_contain_text(PROMPT)
    session.screenshot("story-denoising-trajectory")
    session.check_console()


def test_about_says_the_checkpoint_takes_prompts(session):
    panel = session.tab("About")
    expect(panel.get_by_text(re.compile(r"^yes: prompt-conditioned \(reads up to 32 prompt tokens\)"))).to_be_visible(
        timeout=UI_MS)
    session.check_console()
