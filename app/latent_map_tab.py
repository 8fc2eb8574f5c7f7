"""Latent map tab: a 2-D UMAP of reference latents, with your texts and the other tabs' results on top.

The reference map is fitted once (``python -m train.latent_map``) and stored with the checkpoint, so
it is drawn at start-up; new points are placed on the stored map by the initialisation step of
UMAP's ``transform``, with no refit (``cosmos.projection``).
"""

from __future__ import annotations

import functools

import gradio as gr
import torch

from cosmos.projection import evenly_spaced

from . import inputs
from .context import MODEL_QUEUE, Playground, Produced
from .plots import OVERLAY_COLORS, Overlay, latent_map_figure, message_figure
from .trajectory_run import Trajectory

INFILL_LAYER = "infill variants"        # offered on checkpoints that can infill only
LAYERS = [layer for layer in OVERLAY_COLORS if layer != INFILL_LAYER]   # your texts, samples, path, trajectory, variations
MAX_TRAJECTORY_POINTS = 40             # a long trajectory is drawn through evenly spaced steps
EXAMPLE_TEXTS = "Once upon a time there was a little cat.\nCall me Ishmael.\nThe economy grew strongly this year."


def base_figure(pg: Playground):
    if pg.latent_map is None:
        return message_figure(f"No latent map for this checkpoint. {pg.map_problem}")
    lmap = pg.latent_map
    return latent_map_figure(lmap.coords, lmap.texts, lmap.sources)


def _trajectory_overlay(run: Trajectory) -> Produced:
    """The x0 estimates along a run (evenly spaced steps) and its final sample."""
    picks = evenly_spaced(len(run.x0), MAX_TRAJECTORY_POINTS)
    texts = [f"step {i + 1}: " + run.text(i) for i in picks]     # the continuation (its latent), not the prompt
    latents = torch.stack([run.x0[i] for i in picks] + [run.final_latent])    # (K + 1, N, d)
    return Produced(texts + [f"final sample: {run.final_text}"], latents)


GENERATION_LAYERS = ("generated samples", "denoising trajectory", "variations")   # tabs that need a denoiser


def layers_for(pg: Playground) -> list[str]:
    """The overlays this checkpoint offers: every tab's results (the Infill tab's where it can infill; none of the
    sampling tabs' on an autoencoder-only checkpoint)."""
    if not pg.can_generate:
        return [layer for layer in LAYERS if layer not in GENERATION_LAYERS]
    return LAYERS + [INFILL_LAYER] if pg.pipe.supports_infill else LAYERS


@inputs.user_facing
def draw_map(pg: Playground, own_texts: str, layers: list[str], generated: Produced | None,
             interpolation: Produced | None, trajectory: Trajectory | None, variations: Produced | None,
             infill: Produced | None = None):
    """The map with the chosen overlays; returns (figure, summary line)."""
    if pg.latent_map is None:
        raise inputs.refuse(f"This checkpoint has no latent map. {pg.map_problem}")
    if layers is None:
        layers = []
    offered = layers_for(pg)
    if not isinstance(layers, list) or any(layer not in offered for layer in layers):
        raise inputs.refuse(f"Overlays must be a list drawn from: {', '.join(offered)}.")
    lmap, notes, wanted = pg.latent_map, [], {}
    if "your texts" in layers:
        lines = [line for line in inputs.text(own_texts, "Your texts", pg.limits.max_text_chars).splitlines()
                 if line.strip()]
        if len(lines) > pg.limits.max_map_texts:
            gr.Warning(f"Only the first {pg.limits.max_map_texts} of your {len(lines)} lines are placed.")
            lines = lines[: pg.limits.max_map_texts]
        with inputs.truncation_notice(pg.pipe.max_length):
            wanted["your texts"] = Produced(lines, pg.pipe.encode(lines))
    finished_run = trajectory if isinstance(trajectory, Trajectory) and trajectory.final_latent is not None else None
    sources = {"generated samples": (generated, "Generate"), "interpolation path": (interpolation, "Interpolate"),
               "variations": (variations, "Vary / edit"), INFILL_LAYER: (infill, "Infill"),
               "denoising trajectory": (finished_run and _trajectory_overlay(finished_run), "Denoising trajectory")}
    for layer, (value, tab) in sources.items():
        if layer in layers:
            if isinstance(value, Produced):
                wanted[layer] = value
            else:
                notes.append(f"{layer}: run the {tab} tab first")
    overlays = [Overlay(name, lmap.transform(p.latents), p.texts,
                        path=name in ("interpolation path", "denoising trajectory")) for name, p in wanted.items()]
    summary = f"{len(lmap.texts)} reference points"
    if overlays:
        summary += "; placed: " + ", ".join(f"{o.name} ({len(o.texts)})" for o in overlays)
    if notes:
        summary += ". Not drawn: " + "; ".join(notes)
    return latent_map_figure(lmap.coords, lmap.texts, lmap.sources, overlays), summary + "."


def build(pg: Playground, generated: gr.State, interpolation: gr.State, trajectory: gr.State,
          variations: gr.State, infill: gr.State) -> None:
    groups = ", ".join(sorted(set(pg.latent_map.sources))) if pg.latent_map else "none stored"
    gr.Markdown("Every point is one text's latent (N vectors, flattened), projected to 2-D with UMAP "
                f"(fixed seed). Hover to read the text. Reference set ({groups}): held-out public-domain prose "
                "passages" + (" and the model's own samples" if pg.can_generate else "") +
                ". Add your texts and the other tabs' latest results.")
    with gr.Row():
        own = gr.Textbox(label="Your texts (one per line)", lines=3, value=EXAMPLE_TEXTS,
                         max_length=pg.limits.max_text_chars)
        layers = gr.CheckboxGroup(layers_for(pg), value=["your texts"], label="Overlays")
    run = gr.Button("Draw", variant="primary")
    info = gr.Markdown()
    figure = gr.Plot(value=base_figure(pg), label="latent map")
    run.click(functools.partial(draw_map, pg), [own, layers, generated, interpolation, trajectory, variations, infill],
              [figure, info], api_name="latent_map", preprocess=False,
              concurrency_id=MODEL_QUEUE)
