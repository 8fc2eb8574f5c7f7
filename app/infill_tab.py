"""Infill tab: keep some chunks of a text and let diffusion rewrite the others (``CosmosPipeline.infill``).

On a chunk-local checkpoint latent i owns tokens [i r, (i + 1) r) of the tokenised text (``app/chunks.py``),
so the text is listed as its N chunks, each ticked (kept) or not (rewritten); presets tick the usual
patterns. A run streams every step's x0 estimates of all the variants (the kept chunks show the text's own
tokens, the rewritten ones what the model currently thinks, in two colours) and ends with the variants,
whose kept chunks are the text's tokens verbatim. A checkpoint that cannot infill (Perceiver latents each
read every token; or no denoiser) gets no Infill tab and no ``/infill`` endpoint; the About tab says why.
"""

from __future__ import annotations

import functools
import itertools
import time
import warnings

import gradio as gr
import torch

from cosmos import TextTruncatedWarning

from . import inputs, prompt_box, widgets
from .chunks import (KEPT, KEPT_COLOR, PRESETS, REWRITTEN, REWRITTEN_COLOR, changed_chunks_text, changed_per_chunk,
                     chunk_label, chunk_size, labelled_rows, preset_keep)
from .context import MODEL_QUEUE, Playground, Produced

EXAMPLE_TEXT = ("Once upon a time, there was a little girl named Lily. She loved to play with her red ball in the "
                "park. One day, the ball rolled away.")
EMPTY = "(empty: the decoder put [SEP] first)"


def max_variants(pg: Playground) -> int:
    """Variants per run: the request cap, and at most one sampler batch (``pipe.infill``'s own limit)."""
    return min(pg.limits.max_samples, pg.pipe.sampling.batch_size)


def unavailable_note(pg: Playground) -> str | None:
    """Why this checkpoint cannot infill, in a line; None when it can."""
    if pg.pipe.supports_infill:
        return None
    summary = pg.pipe.summary()
    why = ("it has no denoiser" if summary.denoiser is None else
           f"its latents ({summary.autoencoder}) each read every token, so no latent owns a span of the text")
    return ("Infill needs a chunk-local checkpoint, whose latent i holds tokens [i r, (i + 1) r) only; this one "
            f"cannot infill: {why}. The embedded default, `assets/cosmos-cpu-small`, can.")


def _require_infill(pg: Playground) -> None:
    note = unavailable_note(pg)
    if note:
        raise inputs.refuse(note)


def _choices(pg: Playground, text: str) -> list[tuple[str, int]]:
    """The keep list's (label, chunk index) pairs: the text's chunks, or numbered chunks without a text."""
    if text:
        return [(chunk_label(c), c.index) for c in pg.pipe.chunks(text)]
    return [(f"{i} · chunk {i}", i) for i in range(pg.pipe.latent_shape[0])]


@inputs.user_facing
def show_chunks(pg: Playground, text: str, keep: list[int] | None) -> gr.CheckboxGroup:
    """The keep / rewrite list relabelled with ``text``'s chunks; the ticks stay as they were."""
    text = inputs.optional_text(text, "Text", pg.limits.max_text_chars)
    ticked = keep if isinstance(keep, list) else []
    return gr.CheckboxGroup(choices=_choices(pg, text), value=ticked)


@inputs.user_facing
def apply_preset(pg: Playground, preset: str, text: str) -> gr.CheckboxGroup:
    """Tick the chunks a preset keeps (``app.chunks.preset_keep``) for ``text``."""
    _require_infill(pg)
    preset = inputs.choice(preset, "Preset", PRESETS)
    text = inputs.text(text, "Text", pg.limits.max_text_chars)
    chunks = pg.pipe.chunks(text)
    keep = preset_keep(chunks, preset)
    if len(keep) == len(chunks):
        gr.Warning(f"“{preset}” keeps every chunk of this short text: nothing is left to rewrite. Type a longer "
                   "text or untick a chunk.")
    return gr.CheckboxGroup(choices=[(chunk_label(c), c.index) for c in chunks], value=keep)


def _end_note(pg: Playground, text: str, keep: list[int], r: int) -> str:
    """A warning when a kept chunk holds the text's [SEP] and chunks after it are rewritten: the decoded text
    ends at that [SEP], so what they hold is never shown."""
    end = next(c.index for c in pg.pipe.chunks(text) if c.ends_text)          # the chunk holding [SEP]
    later = [i for i in range(end + 1, pg.pipe.latent_shape[0]) if i not in keep]
    if end not in keep or not later:
        return ""
    return (f" Chunk {end} is kept and holds the text's end ([SEP]): the text stops there, so the rewritten "
            f"chunk(s) after it are not shown; untick chunk {end} to let the text go on.")


def _check_prompt_length(pg: Playground, prompt: str | None) -> None:
    if prompt and len(pg.pipe.tokenizer(prompt)["input_ids"]) > (pg.prompt_tokens or 0):
        inputs.truncated(pg.prompt_tokens or 0, "prompt")


@inputs.user_facing
def run_infill(pg: Playground, text: str, keep: list[int], num: float, steps: float, sampler: str, seed: float,
               prompt: str | None = "", guidance_scale: float | None = None):
    """Stream an infill run: yields (variants highlighted, caption, table, produced) per sampler step; the
    table and the latent-map state come with the last.

    API ``/infill``: (text, keep, num, steps, sampler, seed, prompt, guidance_scale), streamed. ``keep`` is a
    list of chunk indices, whole numbers from 0 to N - 1 (N = the checkpoint's latents, 8 for the embedded
    default): chunk i holds tokens [i r, (i + 1) r) of the tokenised text ([CLS] at 0, r = L / N), and the
    kept chunks' tokens are the text's own in every variant, the others are rewritten; ``[]`` rewrites
    everything, all N give the text back. ``num`` variants (at most 16, and the checkpoint's sampling batch);
    ``prompt`` and ``guidance_scale`` as in ``/generate``. Refused, saying why, on a checkpoint that cannot
    infill. The last output's table has one row per variant: (variant k, text).
    """
    _require_infill(pg)
    pipe, lim = pg.pipe, pg.limits
    text = inputs.text(text, "Text", lim.max_text_chars)
    keep = inputs.indices(keep, "Keep", pipe.latent_shape[0])
    num = inputs.integer(num, "Number of variants", 1, max_variants(pg))
    steps, sampler, seed = pg.sampler_settings(steps, sampler, seed)
    prompt, scale = pg.prompt_settings(prompt, guidance_scale)
    pg.check_work(num, steps)
    r = chunk_size(pipe)
    with inputs.truncation_notice(pipe.max_length):
        original = pipe.encode([text])                                          # (1, N, d)
    _check_prompt_length(pg, prompt)
    end_note = _end_note(pg, text, keep, r)
    if end_note:
        gr.Warning(end_note.strip())
    if len(keep) == pipe.latent_shape[0]:
        gr.Warning("Every chunk is kept: the variants are the text itself. Untick the chunks to rewrite.")
    names = [f"variant {k + 1}" for k in range(num)]
    check_time = pg.step_callback(None, "")
    start, prev = time.perf_counter(), None
    stream = pipe.infill_trajectory(text, keep, num=num, steps=steps, sampler=sampler, seed=seed, prompt=prompt,
                                    guidance_scale=scale)
    with warnings.catch_warnings():                  # the text and prompt are read at the first step: told above
        warnings.simplefilter("ignore", TextTruncatedWarning)
        first = next(stream)
    for step in itertools.chain([first], stream):
        check_time(step.i + 1, steps)
        ids = step.token_ids.tolist()
        counts = [0] * pipe.latent_shape[0]
        for b, row in enumerate(pipe.ids_to_tokens(step.token_ids)):
            flags = [prev is None or prev[b][j] != ids[b][j] for j, _ in row]
            counts = [a + c for a, c in zip(counts, changed_per_chunk(row, flags, r, len(counts)))]
        prev = ids
        caption = (f"step **{step.i + 1} / {steps}** · σ(t) = {step.sigma:.3f} · {changed_chunks_text(counts)} "
                   "(any variant)")
        if step.sample_latents is None:
            yield labelled_rows(pipe, step.token_ids, keep, r, names), caption, gr.skip(), gr.skip()
    seconds = time.perf_counter() - start
    final_ids = step.sample_token_ids                                          # (num, L), kept chunks verbatim
    rows = [[name, t or EMPTY] for name, t in zip(names, step.sample_texts)]
    kept = ", ".join(map(str, keep)) or "none"
    rewritten = ", ".join(str(i) for i in range(pipe.latent_shape[0]) if i not in keep) or "none"
    guidance = f", guidance {scale:g}" if prompt else ""
    info = (f"{num} variant{'s' if num > 1 else ''} x {steps} steps ({sampler.upper()}, seed {seed}{guidance}) in "
            f"**{seconds:.2f} s**: kept chunk(s) {kept} (the text's own tokens), rewrote {rewritten}.{end_note}")
    if prompt:
        info += f" Prompt: “{inputs.markdown_literal(prompt)}”."
    produced = Produced([text, *step.sample_texts], torch.cat([original, step.sample_latents.to(original)]))
    yield labelled_rows(pipe, final_ids, keep, r, names), info, rows, produced


def build(pg: Playground, produced: gr.State) -> None:
    """The tab's components and events (call inside ``gr.Tab``; only on a checkpoint that can infill)."""
    _require_infill(pg)
    lim, r = pg.limits, chunk_size(pg.pipe)
    gr.Markdown("Keep some chunks of a text and let the diffusion model rewrite the rest: each latent of this "
                "checkpoint owns a fixed span of tokens, so the kept latents are pinned to the text's own and the "
                "others are sampled around them (replacement conditioning, as RePaint). Kept tokens come back "
                "verbatim.")
    text = gr.Textbox(label="Text", lines=2, value=EXAMPLE_TEXT, max_length=lim.max_text_chars)
    with gr.Row():
        presets = [gr.Button(name, size="sm", min_width=140) for name in PRESETS]
    keep = gr.CheckboxGroup(
        _choices(pg, EXAMPLE_TEXT), value=preset_keep(pg.pipe.chunks(EXAMPLE_TEXT), "continue"),
        label="Chunks: ticked = keep, unticked = rewrite",
        info=(f"each latent owns {r} token positions of the text ([CLS] first); a chunk after the end is padding: "
              "rewrite it to let the text go on"))
    prompt, guidance = prompt_box.build(pg)
    with gr.Row():
        num = gr.Slider(1, max_variants(pg), value=min(4, max_variants(pg)), step=1, label="Number of variants")
        steps = widgets.steps_slider(pg)
    with gr.Row():
        sampler, seed = widgets.sampler_and_seed(pg)
    run_button, stop_button = widgets.run_and_stop("Infill")
    caption = gr.Markdown()
    view = gr.HighlightedText(label="variants: x0 estimates while running, then the samples",
                              color_map={KEPT: KEPT_COLOR, REWRITTEN: REWRITTEN_COLOR}, show_legend=True,
                              combine_adjacent=False)
    table = gr.Dataframe(headers=["variant", "text"], datatype=["str", "str"], wrap=True, interactive=False,
                         label="Variants", column_widths=["12%", "88%"])
    text.change(functools.partial(show_chunks, pg), [text, keep], keep, api_visibility="private", preprocess=False,
                trigger_mode="always_last", show_progress="hidden")
    for button, name in zip(presets, PRESETS):
        button.click(functools.partial(apply_preset, pg, name), text, keep, api_visibility="private",
                     preprocess=False)
    running = run_button.click(functools.partial(run_infill, pg), [text, keep, num, steps, sampler, seed, prompt,
                                                                   guidance],
                               [view, caption, table, produced], api_name="infill", preprocess=False,
                               concurrency_id=MODEL_QUEUE)
    stop_button.click(None, cancels=[running], api_visibility="private")
