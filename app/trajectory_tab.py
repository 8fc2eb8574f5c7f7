"""Denoising trajectory tab: watch one sample emerge, step by step (improved-diffusion's progressive loop).

Every sampler step's x0 estimate is decoded and streamed; tokens that changed since the previous step
are highlighted, and on a chunk-local checkpoint (latent i owns tokens [i r, (i + 1) r)) the caption and a heat
strip name the chunks they are in. The finished run stays in the session, so the step slider scrubs back through it
without recomputing. On a prompt-conditioned checkpoint the run may continue a prompt (shown in front
of the decoded text, in its own colour).
"""

from __future__ import annotations

import functools
import html
import itertools
import time

import gradio as gr
import torch

from . import inputs, prompt_box, widgets
from .chunks import changed_per_chunk, chunk_size
from .context import DEFAULT_SETTING, MODEL_QUEUE, Playground, paper_note
from .plots import CHANGED_COLOR
from .trajectory_run import CHANGED, Trajectory
FIGURE_EVERY_S = 0.3   # redraw the charts at most this often while streaming (the text streams every step)


def _record_step(run: Trajectory, pieces: list[tuple[int, str]], prev_ids: list[int] | None,
                 ids: list[int], sigma: float, x0: torch.Tensor) -> None:
    flags = [(piece, prev_ids is None or prev_ids[j] != ids[j]) for j, piece in pieces]
    run.pieces.append(flags)
    run.changed.append(sum(changed for _, changed in flags))
    if run.chunk_size:                                     # which latent's span each changed token is in
        run.chunk_changes.append(changed_per_chunk(pieces, [changed for _, changed in flags], run.chunk_size,
                                                   x0.shape[0]))
    run.sigmas.append(sigma)
    run.x0.append(x0)


@inputs.user_facing
def run_trajectory(pg: Playground, steps: float, sampler: str, seed: float, prompt: str | None = "",
                   guidance_scale: float | None = None, setting: str | None = DEFAULT_SETTING):
    """Stream one sample's denoising: yields (highlighted text, figure, slider, caption, finished run).

    API ``/trajectory``: (steps, sampler, seed, prompt, guidance_scale), streamed; ``prompt`` and
    ``guidance_scale`` as in ``/generate`` (gradio_client fills them in for callers that send three
    values; the raw REST API needs all five). ``setting``: the session's sampler setting, as in ``/generate``.
    """
    pg.require_generation()
    steps, sampler, seed = pg.sampler_settings(steps, sampler, seed)
    prompt, scale = pg.prompt_settings(prompt, guidance_scale)
    pipe = pg.sampling_pipe(setting)
    pg.check_work(1, steps, decode_every_step=True)
    run = Trajectory(steps, sampler, seed, prompt, scale, chunk_size=chunk_size(pg.pipe))
    prev_ids, last_figure = None, 0.0
    hidden_slider = gr.Slider(visible=False)
    check_time = pg.step_callback(None, "")
    stream = pipe.trajectory(1, steps=steps, sampler=sampler, seed=seed, prompt=prompt, guidance_scale=scale)
    with inputs.truncation_notice(pg.prompt_tokens or 0, "prompt"):   # the prompt is read at the first step
        first = next(stream)
    for step in itertools.chain([first], stream):
        check_time(step.i + 1, steps)
        ids = step.token_ids[0].tolist()
        _record_step(run, pg.pipe.ids_to_tokens(step.token_ids[:1])[0], prev_ids, ids, step.sigma, step.x0_hat[0])
        prev_ids = ids
        if step.sample_latents is None:
            figure = gr.skip()
            if time.perf_counter() - last_figure > FIGURE_EVERY_S:
                figure, last_figure = run.figure(), time.perf_counter()
            yield run.highlighted(step.i), figure, hidden_slider, run.caption(step.i), gr.skip()
    final = step.sample_latents[0]                                             # (N, d)
    run.final_text, run.final_latent = step.sample_texts[0], final
    norm = float(final.norm()) or 1.0
    run.distance = [float((x0 - final).norm()) / norm for x0 in run.x0]
    last = steps - 1
    slider = (gr.Slider(minimum=1, maximum=steps, value=steps, step=1, visible=True, interactive=True,
                        label="Scrub through the steps (no recomputation)")
              if steps > 1 else hidden_slider)                                 # one step: nothing to scrub
    final_text = html.escape(run.final_text) or "(empty)"
    if prompt:
        final_text = f"{inputs.markdown_literal(prompt)} → {final_text} (guidance {run.guidance_scale:g})"
    caption = run.caption(last) + f"<br>final sample: {final_text}"
    if pipe is not pg.pipe:
        caption += "<br>" + paper_note(pipe)
    yield run.highlighted(last), run.figure(marker=last), slider, caption, run


@inputs.user_facing
def show_step(run: Trajectory | None, step: float):
    """Redraw a stored run at step ``step`` (1-based, as the slider shows it)."""
    if run is None:
        raise inputs.refuse("Run a trajectory first: there is nothing to scrub through yet.")
    i = inputs.integer(step, "Step", 1, run.steps) - 1
    return run.highlighted(i), run.figure(marker=i), run.caption(i)


def build(pg: Playground, run_state: gr.State) -> None:
    gr.Markdown("Each step, the denoiser estimates the clean latent x0 from the noisy one; here that "
                "estimate is decoded to text after every step. Tokens that changed since the previous "
                "step are highlighted" + ("; on this chunk-local checkpoint the caption and a heat strip say which "
                                          "latents' spans (chunks) they are in." if chunk_size(pg.pipe) else "."))
    prompt, guidance = prompt_box.build(pg)
    with gr.Row():
        steps = widgets.steps_slider(pg)
        sampler, seed = widgets.sampler_and_seed(pg)
    setting = widgets.setting_choice(pg, steps, sampler)
    run_button, stop_button = widgets.run_and_stop("Run the trajectory")
    caption = gr.Markdown()
    text = gr.HighlightedText(label="decoded x0 estimate",
                              color_map={CHANGED: CHANGED_COLOR, prompt_box.PROMPT_LABEL: prompt_box.PROMPT_COLOR},
                              show_legend=True, combine_adjacent=False)
    slider = gr.Slider(1, 2, value=1, step=1, visible=False, label="Scrub through the steps")
    figure = gr.Plot(label="per-step quantities")
    running = run_button.click(functools.partial(run_trajectory, pg), [steps, sampler, seed, prompt, guidance, setting],
                               [text, figure, slider, caption, run_state], api_name="trajectory", preprocess=False,
                               concurrency_id=MODEL_QUEUE)
    stop_button.click(None, cancels=[running], api_visibility="private")
    slider.input(show_step, [run_state, slider], [text, figure, caption], api_name="trajectory_step", preprocess=False,
                 trigger_mode="always_last")
