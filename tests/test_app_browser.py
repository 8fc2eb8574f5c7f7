"""The live playground in a real browser: ``python app.py`` as a subprocess (``live_app``), driven by
playwright through Debian's chromium (``playwright install`` is not needed and not used).

Every tab is opened, run (its primary button, or an example), and its rendered output checked; a
full-page screenshot of each goes to tests/artifacts/screenshots/<tab>.png for a human to look at.
Every page also records its browser console: an error logged by the page's own JavaScript, or an
uncaught exception, fails the test.

Without chromium (at /usr/bin/chromium, or $COSMOS_CHROMIUM) or playwright the module is skipped,
unless COSMOS_REQUIRE_BROWSER=1 (set by .ci/run), which turns that into a failure.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from live_app import module_fixture

from cosmos.checkpoint import DEFAULT_CHECKPOINT

CHROMIUM = os.environ.get("COSMOS_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("COSMOS_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"COSMOS_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason} (set COSMOS_REQUIRE_BROWSER=1 to make this a failure)",
                allow_module_level=True)


try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError as err:  # pragma: no cover - depends on the machine
    _unavailable(f"playwright cannot be imported ({err})")
if not Path(CHROMIUM).is_file():
    _unavailable(f"there is no chromium at {CHROMIUM} (apt-get install chromium, or set COSMOS_CHROMIUM)")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent / "artifacts" / "screenshots"
RUN_MS = 60_000          # a model call on 2 CPU cores, queued behind nothing: seconds; generous for slow CI
UI_MS = 10_000           # a render, a tab switch
VIEWPORT = {"width": 1280, "height": 900}
# the sampler the embedded default's tabs start on (its model_index.json, set from bench.steps), as info lines say it
DEFAULT_SAMPLER = json.loads((Path(DEFAULT_CHECKPOINT) / "model_index.json").read_text())["sampling"]["sampler"].upper()

live_app = module_fixture()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Session:
    """One browser page on the app, with what its console said."""

    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def on_console(self, message) -> None:
        if message.type != "error":
            return
        text, url = message.text, (message.location or {}).get("url", "")
        # Ignored: a resource on ANOTHER origin (a font or script CDN) that could not load. These
        # machines are offline and the tests must not reach the network; that is not the page's own
        # JavaScript failing. A failing resource of the app's own origin is still an error.
        if text.startswith("Failed to load resource") and url and not url.startswith(self.origin):
            self.ignored.append(f"{text} ({url})")
            return
        self.errors.append(f"console.error: {text} ({url})")

    def check_console(self) -> None:
        assert not self.errors, "the page logged errors:\n" + "\n".join(self.errors)

    def tab(self, name: str):
        """Open a tab; returns its (visible) panel."""
        self.page.get_by_role("tab", name=name, exact=True).click()
        expect(self.page.get_by_role("tab", name=name, exact=True)).to_have_attribute("aria-selected", "true")
        panel = self.page.get_by_role("tabpanel")     # only the visible panel is in the accessibility tree
        expect(panel).to_have_count(1)
        return panel

    def screenshot(self, slug: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{slug}.png"
        self.page.mouse.move(0, 0)                         # no hover highlight where the last click was
        self.page.screenshot(path=path, full_page=True)
        assert path.stat().st_size > 10_000, f"{path} is suspiciously small"
        return path


def open_session(browser, url: str, tabs: int = 7):
    """A fresh browser context on the app at ``url`` (showing ``tabs`` tabs), recording its console; yields the
    Session."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    parts = urlsplit(url)
    s = Session(page, f"{parts.scheme}://{parts.netloc}")
    page.on("console", s.on_console)
    page.on("pageerror", lambda err: s.errors.append(f"uncaught exception: {err}"))
    page.goto(url)
    expect(page.get_by_role("heading", name="Cosmos playground")).to_be_visible(timeout=UI_MS)
    expect(page.get_by_role("tab")).to_have_count(tabs)   # both embedded checkpoints are chunk-local: Infill too
    yield s
    context.close()


@pytest.fixture
def session(browser, live_app):
    yield from open_session(browser, live_app.url)


def set_number(panel, label: str, value) -> None:
    """Type a value into a slider's number box (or a gr.Number) and commit it."""
    box = panel.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    expect(box).to_have_value(str(value))


def table_cells(panel, column: int):
    """The body cells of a gr.Dataframe's column (the examples' cells are "dataset-cell-*")."""
    return panel.get_by_test_id(re.compile(rf"^cell-\d+-{column}$"))


def legend_names(plot) -> list[str]:
    return plot.locator(".legendtext").all_text_contents()      # SVG text: no innerText


# -------------------------------------------------------------------------------------------- tabs

def test_tab_list(session):
    names = session.page.get_by_role("tab").all_inner_texts()
    assert [n.strip() for n in names] == ["Generate", "Denoising trajectory", "Interpolate", "Latent map",
                                          "Vary / edit", "Infill", "About"]
    session.check_console()


def test_generate_tab(session):
    panel = session.tab("Generate")
    set_number(panel, "number input for Number of samples", 3)
    set_number(panel, "number input for Steps", 10)
    panel.get_by_role("button", name="Generate", exact=True).click()
    expect(panel.get_by_text(re.compile(rf"^3 samples x 10 steps \({DEFAULT_SAMPLER}, seed 0\) in \d+\.\d\d s"))).to_be_visible(
        timeout=RUN_MS)
    expect(table_cells(panel, 0)).to_have_count(3)
    assert table_cells(panel, 0).all_inner_texts() == ["1", "2", "3"]
    assert all(t.strip() for t in table_cells(panel, 1).all_inner_texts())
    session.screenshot("generate")
    session.check_console()


def test_trajectory_tab(session):
    panel = session.tab("Denoising trajectory")
    scrub = panel.get_by_role("slider", name=re.compile("Scrub through the steps"))
    expect(scrub).to_have_count(0)                           # hidden until a run has finished
    set_number(panel, "number input for Steps", 15)
    panel.get_by_role("button", name="Run the trajectory").click()
    expect(panel.get_by_text("final sample:")).to_be_visible(timeout=RUN_MS)
    expect(panel.get_by_text(re.compile(r"step 15 / 15 · σ\(t\) = "))).to_be_visible()
    text = panel.get_by_test_id("highlighted-text")
    expect(text.locator(".token-container").first).to_be_visible()
    assert text.locator(".token-container").count() > 0
    expect(text.get_by_test_id("highlighted-text:category-legend")).to_contain_text("changed")
    expect(scrub).to_have_count(1)                           # the step slider appears after the run
    expect(scrub).to_be_visible()
    plot = panel.locator(".js-plotly-plot")
    expect(plot).to_be_visible(timeout=UI_MS)
    for title in ("x0 estimate: distance to the final latent", "tokens changed since the previous step",
                  "noise level σ(t)"):                         # the three stacked charts
        expect(plot.locator(".annotation-text", has_text=title)).to_have_count(1)
    expect(plot.locator(".barlayer .point")).to_have_count(15)   # tokens changed: one bar per step
    set_number(panel, "number input for Scrub through the steps (no recomputation)", 5)
    expect(panel.get_by_text(re.compile(r"step 5 / 15 · σ\(t\) = "))).to_be_visible(timeout=RUN_MS)
    session.screenshot("denoising-trajectory")
    session.check_console()


@pytest.mark.parametrize("tab", ["Generate", "Denoising trajectory"])
def test_prompt_controls_are_hidden_on_the_unconditional_checkpoint(session, tab):
    panel = session.tab(tab)
    expect(panel.get_by_label("Prompt (optional)")).to_be_hidden()
    expect(panel.get_by_role("spinbutton", name="number input for Guidance scale")).to_be_hidden()
    expect(panel.get_by_text("This checkpoint is unconditional. Prompts need a conditional checkpoint")).to_be_visible()
    expect(panel.get_by_text("python app.py --checkpoint assets/cosmos-story-cpu")).to_be_visible()
    session.check_console()


def run_interpolation(session, points: int = 5):
    """Interpolate two texts by lerp in the UI; returns (panel, plot) once the chart is drawn."""
    panel = session.tab("Interpolate")
    panel.get_by_label("Text A").fill("The little dog ran to the park.")
    panel.get_by_label("Text B").fill("The old man read a long letter.")
    set_number(panel, "number input for Number of points", points)
    panel.get_by_label("lerp (straight line)").check()
    panel.get_by_role("button", name="Interpolate", exact=True).click()
    expect(panel.get_by_text(re.compile(rf"^{points} points by lerp in \d+\.\d\d s"))).to_be_visible(timeout=RUN_MS)
    plot = panel.locator(".js-plotly-plot")
    expect(plot).to_be_visible(timeout=UI_MS)
    return panel, plot


def test_interpolate_tab(session):
    panel, plot = run_interpolation(session, points=5)
    expect(table_cells(panel, 0)).to_have_count(5)
    assert table_cells(panel, 0).all_inner_texts() == ["0", "0.25", "0.5", "0.75", "1"]
    expect(plot.locator(".scatterlayer .trace")).to_have_count(2)
    expect(plot.locator(".scatterlayer .trace").first.locator(".point")).to_have_count(5)
    assert legend_names(plot) == ["distance to text A", "distance to text B"]
    session.screenshot("interpolate")
    session.check_console()


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_interpolate_chart_legend_is_not_covered_by_the_plot_label(session):
    panel, plot = run_interpolation(session, points=3)
    label = panel.get_by_test_id("block-label").filter(has_text="distance to the two ends")
    legend = plot.locator(".legend .traces").first
    expect(legend).to_be_visible(timeout=UI_MS)
    assert not _overlap(label.bounding_box(), legend.bounding_box())


def test_latent_map_tab(session):
    panel = session.tab("Generate")                          # something to overlay, in this session
    set_number(panel, "number input for Steps", 10)
    panel.get_by_role("button", name="Generate", exact=True).click()
    expect(panel.get_by_text(re.compile(r"^4 samples x 10 steps"))).to_be_visible(timeout=RUN_MS)

    panel = session.tab("Latent map")
    plot = panel.locator(".js-plotly-plot")
    expect(plot).to_be_visible(timeout=UI_MS)                # the stored map is drawn at start
    before = legend_names(plot)
    assert before and not {"your texts", "generated samples"} & set(before), before
    panel.get_by_label("generated samples").check()
    panel.get_by_role("button", name="Draw", exact=True).click()
    expect(panel.get_by_text(re.compile(r"reference points; placed: your texts \(3\), generated samples \(4\)\.")))\
        .to_be_visible(timeout=RUN_MS)
    expect(plot.locator(".legendtext", has_text="generated samples")).to_be_visible(timeout=UI_MS)
    names = legend_names(plot)
    assert {"your texts", "generated samples"} <= set(names) and set(before) <= set(names), names
    session.screenshot("latent-map")
    session.check_console()


def test_vary_tab_example(session):
    panel = session.tab("Vary / edit")
    example = "Once upon a time, a little girl found a shiny stone in the garden."
    panel.get_by_test_id("dataset-cell-0-0").click()         # the first example: runs on click
    expect(panel.get_by_label("Text")).to_have_value(example)
    expect(panel.get_by_text(re.compile(r"^4 variation\(s\): noised to strength 0\.4"))).to_be_visible(timeout=RUN_MS)
    expect(table_cells(panel, 0)).to_have_count(5)
    assert table_cells(panel, 0).all_inner_texts() == ["reconstruction (no noise)"] + [
        f"variation {i}" for i in range(1, 5)]
    session.screenshot("vary-edit")
    session.check_console()


STORY = ("Once upon a time, there was a little girl named Lily. She loved to play with her red ball in the park. "
         "One day, the ball rolled away.")
KEPT_PREFIX = "Once upon a time, there was a little girl named Lily. She loved to play with her red ball in the"


def test_infill_tab_continue_preset(session):
    panel = session.tab("Infill")
    panel.get_by_label("Text", exact=True).fill(STORY)
    panel.get_by_role("button", name="continue", exact=True).click()
    chunks = panel.get_by_role("checkbox")
    expect(chunks).to_have_count(8)                          # one per latent: 8 tokens each
    expect(chunks.nth(0)).to_be_checked(timeout=UI_MS)
    expect(panel.get_by_label("0 · once upon a time , there was")).to_be_checked()
    expect(panel.get_by_label("7 · (after the end)")).not_to_be_checked()
    assert [chunks.nth(i).is_checked() for i in range(8)] == [True, True, True] + [False] * 5
    set_number(panel, "number input for Number of variants", 2)
    set_number(panel, "number input for Steps", 10)
    panel.get_by_role("button", name="Infill", exact=True).click()
    expect(panel.get_by_text(re.compile(rf"^2 variants x 10 steps \({DEFAULT_SAMPLER}, seed 0\) in \d+\.\d\d s: kept chunk\(s\) "
                                        r"0, 1, 2"))).to_be_visible(timeout=RUN_MS)
    expect(table_cells(panel, 0)).to_have_count(2)
    texts = table_cells(panel, 1).all_inner_texts()
    assert len(texts) == 2 and all(t.startswith(KEPT_PREFIX) and len(t) > len(KEPT_PREFIX) for t in texts), texts
    legend = panel.get_by_test_id("highlighted-text:category-legend")
    expect(legend).to_contain_text("kept")
    expect(legend).to_contain_text("rewritten")
    session.screenshot("infill")
    session.check_console()


def test_about_tab(session):
    panel = session.tab("About")
    expect(panel.get_by_role("heading", name="What is loaded")).to_be_visible(timeout=UI_MS)
    expect(panel.get_by_role("heading", name="Model card")).to_be_visible()
    expect(panel.get_by_role("heading", name="Train your own")).to_be_visible()
    loaded = panel.get_by_role("table").first               # "What is loaded" (the model card has tables too)
    expect(loaded.get_by_role("cell", name="frozen encoder", exact=True)).to_be_visible()
    expect(loaded.get_by_role("cell", name="weights on disk", exact=True)).to_be_visible()
    session.screenshot("about")
    session.check_console()


def test_the_console_check_catches_page_errors(session):
    """The harness itself: an error the page logs, or throws, does fail ``check_console``."""
    page = session.page
    with page.expect_console_message(lambda m: m.type == "error"):
        page.evaluate("console.error('deliberate test error')")
    with page.expect_event("pageerror"):
        page.evaluate("setTimeout(() => { throw new Error('deliberate uncaught error') }, 0)")
    assert any("deliberate test error" in e for e in session.errors), session.errors
    assert any("deliberate uncaught error" in e for e in session.errors), session.errors
    with pytest.raises(AssertionError, match="deliberate"):
        session.check_console()


def test_an_error_is_shown_to_the_user(session):
    panel = session.tab("Interpolate")                       # both texts empty
    panel.get_by_role("button", name="Interpolate", exact=True).click()
    expect(session.page.get_by_text("Text A is empty: type a sentence or pick an example.")).to_be_visible(
        timeout=RUN_MS)
    expect(table_cells(panel, 0)).to_have_count(0)
    session.check_console()
