"""Controls several tabs build the same way: the sampler choice and seed, and a run button with its Stop."""

from __future__ import annotations

import gradio as gr

from cosmos import SAMPLER_LABELS

from .context import MAX_SEED, Playground


def steps_slider(pg: Playground, label: str = "Steps", **kwargs) -> gr.Slider:
    """The sampler-steps slider, starting at the checkpoint's default steps (``pg.default_steps``)."""
    return gr.Slider(1, pg.limits.max_steps, value=pg.default_steps, step=1, label=label, **kwargs)


def sampler_radio(pg: Playground) -> gr.Radio:
    """The sampler radio (``cosmos.SAMPLER_LABELS``), starting at the checkpoint's default sampler."""
    return gr.Radio([(label, key) for key, label in SAMPLER_LABELS.items()], value=pg.default_sampler,
                    label="Sampler")


def sampler_and_seed(pg: Playground) -> tuple[gr.Radio, gr.Number]:
    """The sampler radio and the seed box, in the current row."""
    return sampler_radio(pg), gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")


def run_and_stop(label: str) -> tuple[gr.Button, gr.Button]:
    """A primary button and a Stop button beside it (wire Stop with ``cancels=[the run's event]``)."""
    with gr.Row():
        run = gr.Button(label, variant="primary")
        stop = gr.Button("Stop", variant="stop", scale=0)
    return run, stop
