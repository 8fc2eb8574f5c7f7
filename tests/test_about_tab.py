"""About tab: the model card read as data (card.json): charts of the training curves, markdown of the rest,
the limitations banner; a README.md shown when there is no card.json; a damaged card.json said, not raised."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go
import pytest

from app import about_tab, ui
from cosmos.card import CARD_FILE, ModelCard

from conftest import PLAYGROUND_LIMITATIONS
from test_card import make_card

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pg(tiny_playground):
    return tiny_playground


@pytest.fixture
def carded(pg, tmp_path):
    """The tiny playground with a card.json (5 evaluations per stage) in its folder's place."""
    make_card(evals=5).save(tmp_path)
    return dataclasses.replace(pg, folder=tmp_path)


def figures(parts) -> list[go.Figure]:
    return [figure for part in parts if isinstance(part, list) for figure in part]


def test_the_about_tab_charts_each_stages_logged_curve(carded):
    card = ModelCard.load(carded.folder)
    charts = figures(about_tab.about_parts(carded))
    assert len(charts) == len(card.stages) == 2
    for chart, stage in zip(charts, card.stages):
        (trace,) = chart.data
        assert list(trace.x) == [p.step for p in stage.curve]
        assert list(trace.y) == [p.values[stage.curve_metric] for p in stage.curve]
        assert list(trace.customdata) == [p.minutes for p in stage.curve]        # hover: minutes
        assert chart.layout.yaxis.title.text == stage.curve_metric and stage.curve_caption in chart.layout.title.text


def test_the_rest_of_the_card_is_markdown_from_its_fields(carded):
    text = about_tab.about_markdown(carded)
    assert "## What is loaded" in text and "## Model card: tiny-card" in text and "## Train your own" in text
    for line in ("### Data and licenses", "- Autoencoder: `data/train.jsonl`, `prose.jsonl` (first 60 texts).",
                 "- Made up here.", "### Training", "| diffusion | 60 | 8 | 0.8 |", "Training machine: a test machine.",
                 "The diffusion stage started from the weights in `runs/first/pipeline`",
                 "### Held-out reconstruction accuracy (4x", "| tinystories | 12 | 0.9123 |",
                 "**Limitations.** It is tiny. Expect noise.", "### Unconditional samples", "| 1 | the end |"):
        assert line in text, line
    assert "| step | minutes |" not in text                # the curves are charts here, not tables
    assert "### Reproduce" not in text                     # "Train your own" says it
    assert about_tab.banner(carded) == "**Limitations.** It is tiny. Expect noise."
    assert "> **Limitations.** It is tiny. Expect noise." in ui.header(carded)


def test_the_banner_comes_from_the_card_not_the_readme(carded):
    no_limits = dataclasses.replace(make_card(), limitations=None)
    no_limits.save(carded.folder)
    assert carded.card and about_tab.banner(carded) is None   # the README's paragraph is not read when card.json is there
    long = dataclasses.replace(make_card(), limitations="One. Two is below. Three.")
    long.save(carded.folder)
    assert about_tab.banner(carded) == "**Limitations.** One. Two is (see About). (details in About.)"


def test_a_folder_without_card_json_shows_its_readme(pg):
    assert not (pg.folder / CARD_FILE).exists()
    parts = about_tab.about_parts(pg)
    assert not figures(parts)
    text = about_tab.about_markdown(pg)
    assert "## Model card: Tiny Cosmos" in text and "A test checkpoint." in text and PLAYGROUND_LIMITATIONS in text
    assert about_tab.banner(pg) == PLAYGROUND_LIMITATIONS


def test_a_damaged_card_json_is_said_and_the_readme_shown(carded):
    (carded.folder / CARD_FILE).write_text('{"name": "x",', encoding="utf-8")
    text = about_tab.about_markdown(carded)
    assert f"*Its {CARD_FILE} could not be read: {carded.folder / CARD_FILE} is not valid JSON" in text
    assert "A test checkpoint." in text and not figures(about_tab.about_parts(carded))
    assert about_tab.banner(carded) == PLAYGROUND_LIMITATIONS


def test_a_stage_without_evaluations_says_so(carded):
    stage = dataclasses.replace(make_card().stages[0], curve=[])
    figure = about_tab.curve_figure(stage)
    assert not figure.data and "logged no evaluations" in figure.layout.annotations[0].text


@pytest.mark.parametrize("name", ["cosmos-cpu-small", "cosmos-story-cpu"])
def test_the_shipped_cards_chart_their_curves(name):
    card = ModelCard.load(REPO / "assets" / name)
    charts = [about_tab.curve_figure(stage) for stage in card.stages]
    assert [len(c.data[0].x) for c in charts] == [len(s.curve) for s in card.stages]
    assert charts[0].data[0].y[-1] == card.stages[0].curve[-1].values["val_accuracy"]


def test_the_demo_builds_with_a_chart_per_stage(pg, carded):
    count = lambda demo: sum(isinstance(block, gr.Plot) for block in demo.blocks.values())  # noqa: E731
    assert count(ui.build_demo(carded)) == count(ui.build_demo(pg)) + 2
