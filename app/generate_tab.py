"""Generate tab: samples, noise -> sampler -> decoder (paper Sec. 3); on a prompt-conditioned checkpoint,
continuations of an optional prompt with classifier-free guidance."""

from __future__ import annotations

import functools
import random
import time

import gradio as gr

from . import inputs, prompt_box, widgets
from .context import DEFAULT_SETTING, MAX_SEED, MODEL_QUEUE, Playground, Produced, paper_note

EXAMPLES = [[4, 50, "sde", 0], [8, 200, "sde", 1], [4, 25, "ddim", 2], [16, 100, "ddim", 3]]
PROMPT_EXAMPLES = [[4, 100, "sde", 0, prompt_box.EXAMPLE_PROMPT],   # conditional checkpoints only, each with
                   [4, 100, "ddim", 1, "Tom and his dog went to the beach."],   # the checkpoint's guidance scale
                   [4, 50, "sde", 2, ""]]
EMPTY = "(empty: the decoder put [SEP] first)"


def random_seed() -> int:
    return random.randint(0, MAX_SEED)


@inputs.user_facing
def generate(pg: Playground, num: float, steps: float, sampler: str, seed: float, prompt: str | None = "",
             guidance_scale: float | None = None, setting: str | None = DEFAULT_SETTING,
             progress: gr.Progress = gr.Progress()) -> tuple[list[list], str, Produced]:
    """Sample ``num`` texts with ``steps`` sampler steps; returns table rows, a timing line, the latents.

    API ``/generate``: (num, steps, sampler, seed, prompt, guidance_scale) -> (table, info). ``prompt``
    ("" or blank: none) is continued by a prompt-conditioned checkpoint and refused by an unconditional
    one; ``guidance_scale`` in [0, 5] (None: the checkpoint's default) applies with a prompt only.
    gradio_client fills the last two with their defaults ("" and the checkpoint's scale) for callers
    that send the first four; the raw REST API (``/gradio_api/call/generate``) needs all six values.
    ``setting`` (the session's, not an API input): the checkpoint's sampler setting or the paper's.
    """
    pg.require_generation()
    lim = pg.limits
    num = inputs.integer(num, "Number of samples", 1, lim.max_samples)
    steps, sampler, seed = pg.sampler_settings(steps, sampler, seed)
    prompt, scale = pg.prompt_settings(prompt, guidance_scale)
    pipe = pg.sampling_pipe(setting)
    pg.check_work(num, steps)
    start = time.perf_counter()
    with inputs.truncation_notice(pg.prompt_tokens or 0, "prompt"):
        out = pipe.generate(num, steps=steps, sampler=sampler, seed=seed, prompt=prompt, guidance_scale=scale,
                               progress=pg.step_callback(progress, "denoising"))
    seconds = time.perf_counter() - start
    rows = [[i + 1, prompt_box.with_prompt(prompt, text or EMPTY)] for i, text in enumerate(out.texts)]
    guidance = f", guidance {scale:g}" if prompt else ""
    info = (f"{num} sample{'s' if num > 1 else ''} x {steps} steps ({sampler.upper()}, seed {seed}{guidance}) "
            f"in **{seconds:.2f} s** ({seconds / num:.3f} s per sample).")
    if pipe is not pg.pipe:
        info += " " + paper_note(pipe)
    if prompt:
        info += f" Prompt: “{inputs.markdown_literal(prompt)}”."
    elif pg.supports_prompts:
        info += " No prompt: unconditional samples."
    return rows, info, Produced(out.texts, out.latents)


def build(pg: Playground, produced: gr.State) -> None:
    """The tab's components and events (call inside ``gr.Tab``)."""
    lim = pg.limits
    gr.Markdown("Draw noise in the latent space, denoise it with the diffusion model, decode it in one "
                "non-autoregressive pass. The same seed and settings give the same texts.")
    prompt, guidance = prompt_box.build(pg)
    with gr.Row():
        num = gr.Slider(1, lim.max_samples, value=4, step=1, label="Number of samples")
        steps = widgets.steps_slider(pg, info=f"starts at this checkpoint's default, {pg.default_steps} "
                                             f"{pg.default_sampler.upper()} steps; the paper uses 200 SDE steps")
    with gr.Row():
        sampler = widgets.sampler_radio(pg)
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
        dice = gr.Button("Random seed", size="sm", scale=0, min_width=120)
    setting = widgets.setting_choice(pg, steps, sampler)
    run = gr.Button("Generate", variant="primary")
    info = gr.Markdown()
    table = gr.Dataframe(headers=["sample", "text"], datatype=["number", "str"], wrap=True,
                         interactive=False, label="Samples", column_widths=["8%", "92%"])
    handler = functools.partial(generate, pg)
    dice.click(random_seed, outputs=seed, api_name="random_seed")
    run.click(handler, [num, steps, sampler, seed, prompt, guidance, setting], [table, info, produced], api_name="generate",
              preprocess=False, concurrency_id=MODEL_QUEUE)
    if pg.supports_prompts:
        examples = [row + [pg.guidance_default] for row in PROMPT_EXAMPLES]
        gr.Examples(examples, [num, steps, sampler, seed, prompt, guidance], [table, info, produced], fn=handler,
                    run_on_click=True, cache_examples=False, label="Examples (click to run)")
    else:
        gr.Examples(EXAMPLES, [num, steps, sampler, seed], [table, info, produced], fn=handler,
                    run_on_click=True, cache_examples=False, label="Examples (click to run)")
