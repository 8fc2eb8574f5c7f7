"""Vary / edit tab: noise a text's latent part of the way and denoise it into variations (SDEdit)."""

from __future__ import annotations

import functools
import time

import gradio as gr
import torch

from cosmos import vary_steps

from . import inputs, widgets
from .context import DEFAULT_SETTING, MAX_SEED, MODEL_QUEUE, Playground, Produced, paper_note

MIN_STRENGTH = 0.01   # below this the noise is too small to change anything (and 1e-18 rounds t to t_end)
EXAMPLES = [["Once upon a time, a little girl found a shiny stone in the garden.", 0.4, 4, 100, "sde", 0],
            ["It is a truth that the whale is the largest creature in the sea.", 0.7, 4, 100, "ddim", 1]]


@inputs.user_facing
def vary(pg: Playground, text: str, strength: float, num: float, steps: float, sampler: str, seed: float,
         setting: str | None = DEFAULT_SETTING,
         progress: gr.Progress = gr.Progress()) -> tuple[list[list], str, Produced]:
    """Rows (kind, text): the autoencoder's reconstruction, then ``num`` variations."""
    pg.require_generation()
    lim = pg.limits
    text = inputs.text(text, "Text", lim.max_text_chars)
    strength = inputs.number(strength, "Strength", MIN_STRENGTH, 1.0)
    num = inputs.integer(num, "Number of variations", 1, lim.max_samples)
    steps, sampler, seed = pg.sampler_settings(steps, sampler, seed)
    pipe = pg.sampling_pipe(setting)
    pg.check_work(num, steps)
    start = time.perf_counter()
    with inputs.truncation_notice(pg.pipe.max_length):
        original = pg.pipe.encode([text])                                     # (1, N, d)
        out = pipe.vary(text, strength=strength, num=num, steps=steps, sampler=sampler, seed=seed,
                           progress=pg.step_callback(progress, "denoising"))
    seconds = time.perf_counter() - start
    reconstruction = pg.pipe.decode(original)[0]
    rows = [["reconstruction (no noise)", reconstruction or "(empty)"]]
    rows += [[f"variation {i + 1}", t or "(empty)"] for i, t in enumerate(out.texts)]
    run_steps = vary_steps(strength, steps)
    info = (f"{num} variation(s): noised to strength {strength:g}, then {run_steps} {sampler.upper()} steps "
            f"(seed {seed}) in **{seconds:.2f} s**. Low strength keeps the text; 1.0 forgets it.")
    if pipe is not pg.pipe:
        info += " " + paper_note(pipe)
    return rows, info, Produced([reconstruction, *out.texts], torch.cat([original, out.latents]))


def build(pg: Playground, produced: gr.State) -> None:
    lim = pg.limits
    gr.Markdown("Encode a text, add noise to its latent up to a time set by the strength, and denoise "
                "from there (SDEdit, Meng et al. 2022): small strengths edit, large ones rewrite.")
    text = gr.Textbox(label="Text", lines=2, max_length=lim.max_text_chars)
    with gr.Row():
        strength = gr.Slider(0.05, 1.0, value=0.5, step=0.05, label="Strength")
        num = gr.Slider(1, lim.max_samples, value=4, step=1, label="Number of variations")
        steps = widgets.steps_slider(pg, "Steps (at strength 1)")
    with gr.Row():
        sampler = widgets.sampler_radio(pg)
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
    setting = widgets.setting_choice(pg, steps, sampler)
    run = gr.Button("Vary", variant="primary")
    info = gr.Markdown()
    table = gr.Dataframe(headers=["", "text"], datatype=["str", "str"], wrap=True, interactive=False,
                         label="Variations", column_widths=["20%", "80%"])
    handler = functools.partial(vary, pg)
    outputs = [table, info, produced]
    run.click(handler, [text, strength, num, steps, sampler, seed, setting], outputs, api_name="vary", preprocess=False,
              concurrency_id=MODEL_QUEUE)
    gr.Examples(EXAMPLES, [text, strength, num, steps, sampler, seed], outputs, fn=handler, run_on_click=True,
                cache_examples=False, label="Examples (click to run)")
