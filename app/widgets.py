"""Controls several tabs build the same way: the sampler choice and seed, and a run button with its Stop."""

from __future__ import annotations

import gradio as gr

from cosmos import SAMPLER_LABELS

from .context import MAX_SEED


def sampler_and_seed() -> tuple[gr.Radio, gr.Number]:
    """The sampler radio (``cosmos.SAMPLER_LABELS``, SDE first) and the seed box, in the current row."""
    sampler = gr.Radio([(label, key) for key, label in SAMPLER_LABELS.items()], value="sde", label="Sampler")
    seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
    return sampler, seed


def run_and_stop(label: str) -> tuple[gr.Button, gr.Button]:
    """A primary button and a Stop button beside it (wire Stop with ``cancels=[the run's event]``)."""
    with gr.Row():
        run = gr.Button(label, variant="primary")
        stop = gr.Button("Stop", variant="stop", scale=0)
    return run, stop
