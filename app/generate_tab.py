"""Generate tab: unconditional samples, noise -> sampler -> decoder (paper Sec. 3)."""

from __future__ import annotations

import functools
import random
import time

import gradio as gr

from . import inputs
from .context import MAX_SEED, MODEL_QUEUE, Playground, Produced, SAMPLERS

EXAMPLES = [[4, 50, "sde", 0], [8, 200, "sde", 1], [4, 25, "ddim", 2], [16, 100, "ddim", 3]]


def random_seed() -> int:
    return random.randint(0, MAX_SEED)


@inputs.user_facing
def generate(pg: Playground, num: float, steps: float, sampler: str, seed: float,
             progress: gr.Progress = gr.Progress()) -> tuple[list[list], str, Produced]:
    """Sample ``num`` texts with ``steps`` sampler steps; returns table rows, a timing line, the latents."""
    lim = pg.limits
    num = inputs.integer(num, "Number of samples", 1, lim.max_samples)
    steps, sampler, seed = pg.sampler_settings(steps, sampler, seed)
    pg.check_work(num, steps)
    start = time.perf_counter()
    out = pg.pipe.generate(num, steps=steps, sampler=sampler, seed=seed,
                           progress=pg.step_callback(progress, "denoising"))
    seconds = time.perf_counter() - start
    rows = [[i + 1, text or "(empty: the decoder put [SEP] first)"] for i, text in enumerate(out.texts)]
    info = (f"{num} sample{'s' if num > 1 else ''} x {steps} steps ({sampler.upper()}, seed {seed}) "
            f"in **{seconds:.2f} s** ({seconds / num:.3f} s per sample).")
    return rows, info, Produced(out.texts, out.latents)


def build(pg: Playground, produced: gr.State) -> None:
    """The tab's components and events (call inside ``gr.Tab``)."""
    lim = pg.limits
    gr.Markdown("Draw noise in the latent space, denoise it with the diffusion model, decode it in one "
                "non-autoregressive pass. The same seed and settings give the same texts.")
    with gr.Row():
        num = gr.Slider(1, lim.max_samples, value=4, step=1, label="Number of samples")
        steps = gr.Slider(1, lim.max_steps, value=50, step=1, label="Steps",
                          info="more steps: slower, usually cleaner (the paper uses 200)")
    with gr.Row():
        sampler = gr.Radio([(label, key) for key, label in SAMPLERS.items()], value="sde", label="Sampler")
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
        dice = gr.Button("Random seed", size="sm", scale=0, min_width=120)
    run = gr.Button("Generate", variant="primary")
    info = gr.Markdown()
    table = gr.Dataframe(headers=["sample", "text"], datatype=["number", "str"], wrap=True,
                         interactive=False, label="Samples", column_widths=["8%", "92%"])
    handler = functools.partial(generate, pg)
    dice.click(random_seed, outputs=seed, api_name="random_seed")
    run.click(handler, [num, steps, sampler, seed], [table, info, produced], api_name="generate", preprocess=False,
              concurrency_id=MODEL_QUEUE)
    gr.Examples(EXAMPLES, [num, steps, sampler, seed], [table, info, produced], fn=handler,
                run_on_click=True, cache_examples=False, label="Examples (click to run)")
