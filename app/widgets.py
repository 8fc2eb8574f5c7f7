"""Controls several tabs build the same way: the sampler choice and seed, and a run button with its Stop."""

from __future__ import annotations

import gradio as gr

from cosmos import SAMPLER_LABELS

from .context import DEFAULT_SETTING, MAX_SEED, PAPER_SETTING, Playground


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


def setting_choice(pg: Playground, steps: gr.Slider, sampler: gr.Radio) -> gr.State:
    """The sampler setting a request runs with, kept in the session (so the API's inputs stay the same): the
    checkpoint's own, or, where the checkpoint records it, the paper's, one click away on a radio that also sets
    the steps and sampler. Without a recorded paper setting there is no radio and the state stays the default."""
    state = gr.State(DEFAULT_SETTING)
    paper = pg.paper_setting
    if paper is None:
        return state
    choice = gr.Radio([(f"this checkpoint's start ({pg.setting_label(DEFAULT_SETTING)})", DEFAULT_SETTING),
                       (f"the paper's ({pg.setting_label(PAPER_SETTING)})", PAPER_SETTING)],
                      value=DEFAULT_SETTING, label="Setting",
                      info="the paper's figures were measured with its setting; few-step settings are faster, and "
                           "their quality on these weights is not measured here")

    def pick(setting: str):
        cfg = paper if setting == PAPER_SETTING else pg.pipe.sampling
        return min(cfg.steps, pg.limits.max_steps), cfg.sampler, setting
    choice.change(pick, choice, [steps, sampler, state], api_visibility="private")
    return state
