"""About tab: what is loaded (config, sizes), its model card (data, training facts and curves, measured
metrics, samples, limitations), how to train one.

The card is read as data from the checkpoint's ``card.json`` (``cosmos.card.ModelCard``, written by
``train.export``): markdown from its fields, a chart per training stage from its logged evaluations. A
checkpoint without one (an older export, a hub checkpoint) shows its README.md instead.
"""

from __future__ import annotations

import logging
import re

import gradio as gr
import plotly.graph_objects as go

from cosmos.card import CARD_FILE, CardError, ModelCard, Stage

from . import infill_tab, plots
from .chunks import chunk_size
from .context import AUTOENCODER_ONLY_NOTE, Playground

log = logging.getLogger("cosmos.app")

TRAIN_YOUR_OWN = """
## Train your own
One command per stage (presets in `train/configs/`: `tiny` for a smoke test, `cpu-small` for this
app's default, `paper-base` for GPUs):
```bash
python -m train.autoencoder  --config cpu-small
python -m train.latent_stats --config cpu-small
python -m train.diffusion    --config cpu-small
python -m train.export       --config cpu-small --out my-cosmos
python -m train.latent_map   --pipeline my-cosmos       # the map this app draws
python app.py --checkpoint my-cosmos                    # or COSMOS_CHECKPOINT=my-cosmos python app.py
```
A folder or a Hugging Face hub id works as the checkpoint. For prompts (story continuation, classifier-free
guidance), start the app on the embedded `assets/cosmos-story-cpu`, or train your own with the `story-cpu`
stages after `cpu-small`'s autoencoder:
```bash
python app.py --checkpoint assets/cosmos-story-cpu      # the embedded prompt-conditioned checkpoint
python -m train.latent_stats --config story-cpu
python -m train.diffusion    --config story-cpu
python -m train.export       --config story-cpu --out my-story-cosmos
python app.py --checkpoint my-story-cosmos              # the prompt box and guidance slider come alive
```
"""


def _millions(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count else "none"


def summary_rows(pg: Playground) -> list[tuple[str, str]]:
    info = pg.pipe.summary()
    weights = sum(f.stat().st_size for f in pg.folder.rglob("*.safetensors") if "latent_map" not in f.parts)
    rows = [("checkpoint", f"`{pg.name}`"),
            ("frozen encoder", f"`{info.encoder}` (width {info.encoder_width}, vocabulary {info.vocab_size:,})"),
            ("compression", f"L = {info.max_length} tokens -> N = {info.num_latents} latents of width "
                            f"{info.latent_width} ({info.compression}x fewer vectors)"),
            ("autoencoder", info.autoencoder),
            ("parameters", f"autoencoder {_millions(info.parameters['autoencoder'])}, denoiser "
                           f"{_millions(info.parameters['denoiser'])} (frozen encoder not counted)"),
            ("weights on disk", f"{weights / 2**20:.1f} MB"),
            ("sampling defaults", sampling_row(pg)),
            ("prompts", prompts_row(pg)),
            ("infill", infill_row(pg)),
            ("latent map", f"{len(pg.latent_map.texts)} points" if pg.latent_map else f"none ({pg.map_problem})"),
            ("loaded in", f"{pg.load_seconds:.1f} s")]
    return rows


def sampling_row(pg: Playground) -> str:
    """The sampler the tabs start on, or why this checkpoint does not sample."""
    if not pg.can_generate:
        return f"none: it cannot sample (so there is no Generate, Denoising trajectory or Vary / edit tab). {AUTOENCODER_ONLY_NOTE}"
    info = pg.pipe.summary()
    return (f"{info.sampler}, {info.steps} steps, tan-d schedule d = {info.schedule_d:g}, down to t = {info.t_end:g}"
            + (", ends on the last x0 estimate" if pg.pipe.sampling.final_x0 else ", returns the last step's mean"))


def prompts_row(pg: Playground) -> str:
    """Whether the checkpoint takes prompts, and its default guidance scale."""
    if not pg.supports_prompts:
        return "no: unconditional checkpoint (the prompt box and guidance slider are hidden)"
    return (f"yes: prompt-conditioned (reads up to {pg.prompt_tokens} prompt tokens), default guidance scale "
            f"w = {pg.guidance_default:g} (x0 = x0_c + w (x0_c − x0_u))")


def infill_row(pg: Playground) -> str:
    """Whether the checkpoint can infill (the Infill tab is there), and if not, why."""
    r = chunk_size(pg.pipe)
    if r:
        return f"yes: chunk-local latents, each owning {r} tokens (the Infill tab keeps some chunks, rewrites the rest)"
    return f"no (so there is no Infill tab): {infill_tab.unavailable_note(pg)}"


def model_card(pg: Playground) -> tuple[ModelCard | None, str | None]:
    """(the checkpoint's card.json as data, None) or (None, why it cannot be read); (None, None) if it has none."""
    try:
        return ModelCard.load(pg.folder), None
    except (CardError, OSError) as err:
        log.warning("model card not shown: %s", err)
        return None, f"{err}"


def curve_figure(stage: Stage) -> go.Figure:
    """A training stage's logged evaluations: ``curve_metric`` against the step (hover: minutes)."""
    if not stage.curve:
        return plots.message_figure(f"The {stage.name} stage logged no evaluations.")
    steps, values = stage.curve_values()
    fig = go.Figure(go.Scatter(
        x=steps, y=values, mode="lines+markers", marker_size=5, customdata=[p.minutes for p in stage.curve],
        hovertemplate=f"step %{{x}}<br>%{{customdata:.1f}} min<br>{stage.curve_metric} %{{y:.4f}}<extra></extra>"))
    fig.update_layout(template=plots.TEMPLATE, height=320, title=dict(text=plots.hover(stage.curve_caption, 60), x=0.0),
                      xaxis_title="training step", yaxis_title=stage.curve_metric, margin=dict(l=50, r=20, t=60, b=40))
    return fig


def card_body(card: str) -> tuple[str, str]:
    """(title, body) of a README.md shown as the model card of a checkpoint without card.json: YAML front
    matter dropped, the H1 title taken out, the "Reproduce" section dropped ("Train your own" below says the
    same), headings one level down."""
    card = re.sub(r"\A---\n.*?\n---\n", "", card, flags=re.S)
    title = re.search(r"^# (.+)$", card, flags=re.M)
    card = re.sub(r"^# .+\n", "", card, count=1, flags=re.M)
    card = re.sub(r"^## Reproduce\n.*?(?=^## |\Z)", "", card, flags=re.M | re.S)
    body = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", card, flags=re.M)
    return (title.group(1).strip() if title else ""), body.strip()


def shorten(text: str, sentences: int = 2) -> str:
    """The banner: the first sentences of a limitations text, pointing to About for the rest."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text.strip())
    text = " ".join(parts[:sentences]).replace(" below", " (see About)")  # the card's "below" is not below here
    return "**Limitations.** " + text + (" (details in About.)" if len(parts) > sentences else "")


def limitations(card: str, sentences: int = 2) -> str | None:
    """The banner from a README.md's '**Limitations.**' paragraph, if it has one (a checkpoint without card.json)."""
    match = re.search(r"^\*\*Limitations\.\*\*(.*)$", card, flags=re.M)
    return shorten(match.group(1), sentences) if match else None


def banner(pg: Playground) -> str | None:
    """The app's limitations line: the card's limitations field, else the README's paragraph."""
    card, _ = model_card(pg)
    if card is not None:
        return shorten(card.limitations) if card.limitations else None
    return limitations(pg.card)


def about_parts(pg: Playground) -> list[str | list[go.Figure]]:
    """The About tab in order: markdown, and the training-curve charts (a list shown side by side)."""
    table = "\n".join(["| property | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in summary_rows(pg)]])
    loaded = f"## What is loaded\n{table}\n\n"
    end = (f"{TRAIN_YOUR_OWN}\n## Method\nCosmos: *Compressed and Smooth Latent Space for Text Diffusion Modeling* "
           "(Meshchaninov et al., NeurIPS 2025, [arXiv 2506.21170](https://arxiv.org/abs/2506.21170)).")
    card, problem = model_card(pg)
    if card is None:
        title, body = card_body(pg.card) if pg.card else ("", "*This checkpoint has no model card (README.md).*")
        if problem:
            body = f"*Its {CARD_FILE} could not be read: {problem}.*\n\n{body}"
        return [f"{loaded}## Model card: {title}\n{body}\n" if title else f"{loaded}## Model card\n{body}\n", end]
    if card.origin is not None:           # weights trained elsewhere (a converted release): provenance, no curves
        title, body = card_body(card.to_markdown())
        return [f"{loaded}## Model card: {title}\n{body}\n", end]
    head = (f"{loaded}## Model card: {card.name}\nTrained with this repository's `train/` (preset `{card.preset}`), "
            f"measured on {card.measured_on}.\n\n{card.data_markdown(3)}\n\n{card.training_markdown(3, curve_tables=False)}"
            "\n\nTraining curves (every evaluation logged):")
    results = f"{card.results_markdown(3)}\n\n{card.samples_markdown(3)}\n"
    return [head, [curve_figure(stage) for stage in card.stages], results, end]


def about_markdown(pg: Playground) -> str:
    """The About tab's text (its charts left out)."""
    return "\n".join(part for part in about_parts(pg) if isinstance(part, str))


def build(pg: Playground) -> None:
    for part in about_parts(pg):
        if isinstance(part, str):
            gr.Markdown(part)
            continue
        with gr.Row():
            for figure in part:
                gr.Plot(figure, show_label=False)
