"""The whole playground: one ``gr.Blocks`` with a tab per module, a queue, and the session states
that let the latent map overlay the other tabs' results."""

from __future__ import annotations

import html

import gradio as gr

from . import about_tab, generate_tab, infill_tab, interpolate_tab, latent_map_tab, trajectory_tab, vary_tab
from .context import AUTOENCODER_ONLY_NOTE, Playground

CONCURRENCY = 1        # per concurrency id; every model event shares MODEL_QUEUE: torch already uses every core
QUEUE_SIZE = 64        # requests waiting beyond this are refused with "queue full"
CSS = ".gradio-container {max-width: 1200px !important}"


def header(pg: Playground) -> str:
    lines = ["# Cosmos playground",
             "Text diffusion in a compressed, smooth latent space ([Cosmos, arXiv 2506.21170]"
             "(https://arxiv.org/abs/2506.21170)): a frozen encoder's features are compressed to "
             f"{pg.pipe.latent_shape[0]} latent vectors, a diffusion model generates in that space, and a "
             f"decoder turns latents back into up to {pg.pipe.max_length} tokens at once.",
             f"Checkpoint: `{html.escape(pg.name)}` (details in About)."]
    if pg.notice:
        lines.append(f"> **Note.** {html.escape(pg.notice)}")
    if not pg.can_generate:
        lines.append(f"> **Autoencoder only.** {AUTOENCODER_ONLY_NOTE}")
    note = about_tab.banner(pg)
    if note:
        lines.append(f"> {note}")
    return "\n\n".join(lines)


def build_demo(pg: Playground) -> gr.Blocks:
    with gr.Blocks(title="Cosmos playground", analytics_enabled=False) as demo:
        gr.Markdown(header(pg))
        generated, interpolation, trajectory, variations, infilled = (gr.State(None) for _ in range(5))
        with gr.Tabs():
            if pg.can_generate:                         # an autoencoder-only checkpoint: the header says why not
                with gr.Tab("Generate", id="generate"):
                    generate_tab.build(pg, generated)
                with gr.Tab("Denoising trajectory", id="trajectory"):
                    trajectory_tab.build(pg, trajectory)
            with gr.Tab("Interpolate", id="interpolate"):
                interpolate_tab.build(pg, interpolation)
            with gr.Tab("Latent map", id="latent-map"):
                latent_map_tab.build(pg, generated, interpolation, trajectory, variations, infilled)
            if pg.can_generate:
                with gr.Tab("Vary / edit", id="vary"):
                    vary_tab.build(pg, variations)
            if pg.pipe.supports_infill:                 # elsewhere the About tab says why there is none
                with gr.Tab("Infill", id="infill"):
                    infill_tab.build(pg, infilled)
            with gr.Tab("About", id="about"):
                about_tab.build(pg)
    return demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
