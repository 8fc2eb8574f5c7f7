"""The playground on a converted release, in a real browser (issue 26, item 5).

The official-format fixture (tests/fixtures/official-cosmos/) is converted by ``python -m train.convert_official``
and given a latent map by ``python -m train.latent_map`` (public-domain prose), then ``python app.py --checkpoint
FOLDER`` runs as a subprocess and chromium drives Generate, the streamed Denoising trajectory (also with the
paper's setting, one click away), Interpolate, the Latent map and About. Its weights are random, so the texts are
noise: the tests check that every tab runs and shows what it should. The shared browser machinery (skips without
chromium, console checks, screenshots) is test_app_browser's.
"""

from __future__ import annotations

import re

import pytest

from live_app import AppStartError, running_app
from test_app_browser import RUN_MS, UI_MS, browser, expect, legend_names, open_session, set_number, table_cells  # noqa: F401
from test_app_official import build_map, convert


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-official")
    folder = convert(tmp / "cosmos-official-tiny")
    build_map(folder, tmp, samples=4)
    try:
        with running_app(["--checkpoint", str(folder)]) as app:
            yield app
    except AppStartError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture
def session(browser, live_app):  # noqa: F811  (browser: the fixture imported above)
    yield from open_session(browser, live_app.url, tabs=6)


def test_every_tab_but_infill(session):
    names = [n.strip() for n in session.page.get_by_role("tab").all_inner_texts()]
    assert names == ["Generate", "Denoising trajectory", "Interpolate", "Latent map", "Vary / edit", "About"]
    session.check_console()


def test_generate_on_the_converted_folder(session):
    panel = session.tab("Generate")
    expect(panel.get_by_role("radio", name=re.compile(r"^this checkpoint's start \(10 DPM2M steps"))).to_be_checked()
    set_number(panel, "number input for Number of samples", 2)
    panel.get_by_role("button", name="Generate", exact=True).click()
    expect(panel.get_by_text(re.compile(r"^2 samples x 10 steps \(DPM2M, seed 0\) in \d+\.\d\d s"))).to_be_visible(
        timeout=RUN_MS)
    expect(table_cells(panel, 0)).to_have_count(2)
    session.screenshot("official-generate")
    session.check_console()


def test_the_paper_setting_is_one_click_away(session):
    panel = session.tab("Denoising trajectory")
    steps = panel.get_by_role("spinbutton", name="number input for Steps", exact=True)
    expect(steps).to_have_value("10")
    panel.get_by_role("radio", name=re.compile(r"^the paper's \(200 SDE steps, uniform in t, t 1 → 0\.05, returns "
                                               r"the last step's mean\)")).check()
    expect(steps).to_have_value("200", timeout=UI_MS)                       # the click set steps and sampler
    expect(panel.get_by_role("radio", name=re.compile(r"^SDE \(Euler-Maruyama"))).to_be_checked()
    set_number(panel, "number input for Steps", 12)                         # a short run of the paper's sampler
    panel.get_by_role("button", name="Run the trajectory").click()
    expect(panel.get_by_text("final sample:")).to_be_visible(timeout=RUN_MS)
    expect(panel.get_by_text(re.compile(r"step 12 / 12 · σ\(t\) = "))).to_be_visible()
    expect(panel.get_by_text("The paper's setting: t from 1 to 0.05, returning the last step's mean.")).to_be_visible()
    plot = panel.locator(".js-plotly-plot")
    expect(plot.locator(".barlayer .point")).to_have_count(12, timeout=UI_MS)   # one bar per streamed step
    session.screenshot("official-denoising-trajectory")
    session.check_console()


def test_interpolate_on_the_converted_folder(session):
    panel = session.tab("Interpolate")
    panel.get_by_label("Text A").fill("Call me Ishmael.")
    panel.get_by_label("Text B").fill("The state of the Union is strong.")
    set_number(panel, "number input for Number of points", 4)
    panel.get_by_label("slerp (spherical, per latent vector)").check()
    panel.get_by_role("button", name="Interpolate", exact=True).click()
    expect(panel.get_by_text(re.compile(r"^4 points by slerp in \d+\.\d\d s"))).to_be_visible(timeout=RUN_MS)
    expect(table_cells(panel, 0)).to_have_count(4)
    session.screenshot("official-interpolate")
    session.check_console()


def test_latent_map_of_prose_and_samples(session):
    panel = session.tab("Latent map")
    plot = panel.locator(".js-plotly-plot")
    expect(plot).to_be_visible(timeout=UI_MS)
    assert {"prose: Moby-Dick", "model sample"} <= set(legend_names(plot)), legend_names(plot)
    panel.get_by_role("button", name="Draw", exact=True).click()
    expect(panel.get_by_text(re.compile(r"^14 reference points; placed: your texts \(3\)\."))).to_be_visible(
        timeout=RUN_MS)
    session.check_console()


def test_about_shows_the_converted_card(session):
    panel = session.tab("About")
    expect(panel.get_by_role("heading", name=re.compile("^Model card: cosmos-official-tiny"))).to_be_visible(
        timeout=UI_MS)
    expect(panel.get_by_role("heading", name="Provenance and license")).to_be_visible()
    expect(panel.get_by_text(re.compile("carry no license from their authors")).first).to_be_visible()
    loaded = panel.get_by_role("table").first
    expect(loaded.get_by_role("cell", name=re.compile("^no \\(so there is no Infill tab\\)"))).to_be_visible()
    session.screenshot("official-about")
    session.check_console()
