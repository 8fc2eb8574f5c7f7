"""Interpolate tab: decode points on a path between two texts' latents (paper Sec. 5, smoothness).

A smooth latent space decodes every point of the path to a well-formed text, changing a few words at
a time; a rough one jumps or falls apart in between.
"""

from __future__ import annotations

import functools
import time

import gradio as gr

from cosmos import INTERPOLATION_METHODS

from . import inputs
from .context import MODEL_QUEUE, Playground, Produced
from .plots import interpolation_figure

NOISE_STEPS = 50  # DDIM steps of the noise-space path (inversion and denoising)
EXAMPLES = [
    ["The little dog ran to the park to play with a red ball.",
     "The old man sat by the window and read a long letter.", 8, "slerp"],
    ["Lily was happy because the sun was shining.", "Tom was sad because it was raining all day.", 6, "lerp"],
    ["Call me Ishmael.", "The state of the Union is strong.", 8, "noise"],
]


def methods_for(pg: Playground) -> dict[str, str]:
    """The interpolation methods this checkpoint offers: the noise-space path needs a denoiser."""
    return {k: v for k, v in INTERPOLATION_METHODS.items() if k != "noise" or pg.can_generate}


@inputs.user_facing
def interpolate(pg: Playground, text_a: str, text_b: str, points: float, method: str,
                progress: gr.Progress = gr.Progress()) -> tuple[list[list], object, str, Produced]:
    """Rows (position, text, mark), distance chart, summary line, and the path's latents."""
    lim = pg.limits
    text_a = inputs.text(text_a, "Text A", lim.max_text_chars)
    text_b = inputs.text(text_b, "Text B", lim.max_text_chars)
    points = inputs.integer(points, "Number of points", 2, lim.max_points)
    method = inputs.choice(method, "Method", list(methods_for(pg)))
    if method == "noise":
        pg.check_work(points, NOISE_STEPS)
    start = time.perf_counter()
    with inputs.truncation_notice(pg.pipe.max_length):
        ends = pg.pipe.encode([text_a, text_b])                               # (2, N, d)
        path = pg.pipe.interpolate(text_a, text_b, k=points, method=method, steps=NOISE_STEPS,
                                   progress=pg.step_callback(progress, "denoising path"))
    seconds = time.perf_counter() - start
    span = float((ends[0] - ends[1]).norm()) or 1.0
    to_a = [float((z - ends[0]).norm()) / span for z in path.latents]
    to_b = [float((z - ends[1]).norm()) / span for z in path.latents]
    rows, distinct = [], 0
    for i, (w, text) in enumerate(zip(path.weights, path.texts)):
        new = i == 0 or text != path.texts[i - 1]
        distinct += new
        rows.append([round(w, 3), text or "(empty)", "● new" if new else "same as above"])
    ends_are = ("what the autoencoder reconstructs from each end's latent" if method != "noise" else
                "each end's latent mapped to noise (DDIM inversion) and denoised back, so they may differ from "
                "the texts")
    info = (f"{points} points by {method} in {seconds:.2f} s: **{distinct} distinct texts** along the path. "
            f"Row 1 and the last row are {ends_are}.")
    return rows, interpolation_figure(path.weights, to_a, to_b, path.texts), info, Produced(path.texts, path.latents)


def build(pg: Playground, produced: gr.State) -> None:
    gr.Markdown("Encode two texts, walk between their latents, and decode every point.")
    with gr.Row():
        text_a = gr.Textbox(label="Text A", lines=2, max_length=pg.limits.max_text_chars)
        text_b = gr.Textbox(label="Text B", lines=2, max_length=pg.limits.max_text_chars)
    with gr.Row():
        points = gr.Slider(2, pg.limits.max_points, value=8, step=1, label="Number of points")
        method = gr.Radio([(label, key) for key, label in methods_for(pg).items()], value="slerp",
                          label="Method")
    run = gr.Button("Interpolate", variant="primary")
    info = gr.Markdown()
    table = gr.Dataframe(headers=["position", "decoded text", "distinct?"], datatype=["number", "str", "str"],
                         wrap=True, interactive=False, label="Path", column_widths=["10%", "75%", "15%"])
    figure = gr.Plot(label="distance to the two ends")
    handler = functools.partial(interpolate, pg)
    outputs = [table, figure, info, produced]
    run.click(handler, [text_a, text_b, points, method], outputs, api_name="interpolate", preprocess=False,
              concurrency_id=MODEL_QUEUE)
    gr.Examples([row for row in EXAMPLES if row[3] in methods_for(pg)], [text_a, text_b, points, method], outputs, fn=handler, run_on_click=True,
                cache_examples=False, label="Examples (click to run)")
