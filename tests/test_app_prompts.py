"""The playground's prompt box and guidance slider (issue 7), at handler level: Generate and Denoising
trajectory on a tiny prompt-conditioned checkpoint (``tiny_conditional_playground``) agree with the
pipeline, are deterministic, show the prompt with their outputs, scrub back to what was streamed, and
validate the new fields with messages naming them; an unconditional checkpoint refuses prompts with a
note saying how to get a conditional one, and greys the controls out."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import gradio as gr
import pytest
import torch

from app import Limits, about_tab, build_demo, generate_tab, latent_map_tab, prompt_box, trajectory_tab
from app.context import MAX_GUIDANCE, STORY_CHECKPOINT, UNCONDITIONAL_NOTE

from conftest import TINY_GUIDANCE, TINY_N, TINY_PROMPT_LEN

REPO = Path(__file__).resolve().parents[1]

D = 64
PROMPT = "the cat sat on the mat"
OTHER = "a dog ran in the park"
LONG_PROMPT = "one two three four five six seven eight nine ten"     # > TINY_PROMPT_LEN tokens
REFUSAL = "Prompt must be empty here. " + UNCONDITIONAL_NOTE


@pytest.fixture(scope="module")
def pg(tiny_conditional_playground):
    return tiny_conditional_playground


@pytest.fixture(scope="module")
def plain(tmp_path_factory, tiny_encoder, tiny_encoder_dir):
    """An unconditional playground (the tiny pipeline, no map: cheaper than ``tiny_playground``)."""
    from app import load_playground
    from conftest import make_tiny_pipeline

    folder = tmp_path_factory.mktemp("tiny-unconditional")
    make_tiny_pipeline(tiny_encoder, tiny_encoder_dir).save_pretrained(folder)
    return load_playground(folder)


def message(excinfo) -> str:
    return excinfo.value.message


def generate(pg, prompt="", guidance=None, num=2, steps=3, sampler="sde", seed=5):
    return generate_tab.generate(pg, num, steps, sampler, seed, prompt, guidance)


def drain(pg, prompt="", guidance=None, steps=4, sampler="sde", seed=7):
    updates = list(trajectory_tab.run_trajectory(pg, steps, sampler, seed, prompt, guidance))
    return updates, updates[-1][4]


# --- generate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["sde", "ddim"])
def test_generate_with_a_prompt_matches_the_pipeline(pg, sampler):
    rows, info, produced = generate(pg, PROMPT, 1.5, num=3, sampler=sampler)
    out = pg.pipe.generate(3, steps=3, sampler=sampler, seed=5, prompt=PROMPT, guidance_scale=1.5)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [r[1] for r in rows] == [f"{PROMPT} → {t or generate_tab.EMPTY}" for t in out.texts]
    assert produced.texts == out.texts and torch.equal(produced.latents, out.latents)   # the map: continuations
    assert f"3 samples x 3 steps ({sampler.upper()}, seed 5, guidance 1.5) in **" in info
    assert info.endswith(f"Prompt: “{PROMPT}”.")


def test_same_seed_prompt_and_guidance_give_the_same_samples(pg):
    first, again = generate(pg, PROMPT, 1.0), generate(pg, PROMPT, 1.0)
    assert first[0] == again[0] and torch.equal(first[2].latents, again[2].latents)
    for other in (generate(pg, PROMPT, 3.0), generate(pg, OTHER, 1.0), generate(pg, PROMPT, 1.0, seed=6)):
        assert not torch.equal(first[2].latents, other[2].latents)


def test_guidance_defaults_to_the_checkpoints_scale(pg):
    assert pg.guidance_default == TINY_GUIDANCE
    default = generate(pg, PROMPT, None)
    assert torch.equal(default[2].latents, generate(pg, PROMPT, TINY_GUIDANCE)[2].latents)
    assert f"guidance {TINY_GUIDANCE:g})" in default[1]


@pytest.mark.parametrize("empty", ["", "   \n\t\u3000", None])
def test_an_empty_prompt_samples_unconditionally(pg, empty):
    rows, info, produced = generate(pg, empty, 3.0)
    out = pg.pipe.generate(2, steps=3, sampler="sde", seed=5)          # no prompt, no guidance
    assert torch.equal(produced.latents, out.latents) and [r[1] for r in rows] == [t or generate_tab.EMPTY
                                                                                  for t in out.texts]
    assert "→" not in "".join(r[1] for r in rows)
    assert "guidance" not in info and info.endswith("No prompt: unconditional samples.")
    assert torch.equal(generate(pg, empty, 0.0)[2].latents, produced.latents)   # the scale is not used


def test_the_prompt_is_stripped(pg):
    assert generate(pg, f"  {PROMPT}\n")[0] == generate(pg, PROMPT)[0]


ODD_PROMPTS = ["A family 👨‍👩‍👧‍👦 under a rainbow 🏳️‍🌈", "ذهب الولد الصغير إلى الحديقة", "The li\u200bttle d\u200dog",
               "The\x00 dog\x1b[31m ran", "a \ud800 b", "**bold** <b>tag</b> [link](x) `code`"]


@pytest.mark.parametrize("prompt", ODD_PROMPTS)
def test_odd_prompts_run_and_are_shown(pg, prompt):
    rows, info, _ = generate(pg, prompt, num=1)
    shown = prompt.replace("\ud800", "?")                                 # lone surrogates from the API -> '?'
    assert rows[0][1].startswith(f"{shown} → ")
    assert "<b>" not in info and "**bold**" not in info                    # shown literally in the Markdown line


def test_info_escapes_markdown_in_the_prompt(pg):
    info = generate(pg, "**bold** <b>x</b>", num=1)[1]
    assert info.endswith("Prompt: “\\*\\*bold\\*\\* &lt;b&gt;x&lt;/b&gt;”.")


def test_long_prompts_are_cut_with_notices(pg):
    short = dataclasses.replace(pg, limits=Limits(max_text_chars=12))
    with pytest.warns(UserWarning, match="Prompt is 22 characters long; only the first 12 are used"):
        rows = generate(short, PROMPT, num=1)[0]
    assert rows[0][1].startswith("the cat sat → ")
    with pytest.warns(UserWarning, match=f"The model reads at most {TINY_PROMPT_LEN} tokens per prompt"):
        generate(pg, LONG_PROMPT, num=1)
    with pytest.warns(UserWarning, match=f"The model reads at most {TINY_PROMPT_LEN} tokens per prompt"):
        drain(pg, LONG_PROMPT, steps=2)


def test_short_prompts_give_no_notice(pg, recwarn):
    generate(pg, PROMPT, num=1)
    drain(pg, PROMPT, steps=2)
    assert not [w for w in recwarn if "tokens per" in str(w.message) or "characters long" in str(w.message)]


# --- validation ------------------------------------------------------------------------------------
BAD_GUIDANCE = [-0.1, MAX_GUIDANCE + 0.01, math.nan, math.inf, -math.inf, "1", "", True, [1.0], 10**400]
BAD_PROMPT = [5, 1.5, True, b"bytes", ["a list"], {"p": 1}]
HANDLERS = {"generate": lambda pg, prompt, guidance: generate(pg, prompt, guidance),
            "trajectory": lambda pg, prompt, guidance: drain(pg, prompt, guidance, steps=2)}


@pytest.mark.parametrize("handler", list(HANDLERS))
@pytest.mark.parametrize("value", BAD_GUIDANCE, ids=repr)
def test_bad_guidance_is_refused_naming_the_field(pg, handler, value):
    with pytest.raises(gr.Error) as excinfo:
        HANDLERS[handler](pg, PROMPT, value)
    assert message(excinfo).startswith("Guidance scale must be"), message(excinfo)
    assert "Traceback" not in message(excinfo) and "Something went wrong" not in message(excinfo)


@pytest.mark.parametrize("handler", list(HANDLERS))
def test_guidance_error_names_the_range(pg, handler):
    with pytest.raises(gr.Error) as excinfo:
        HANDLERS[handler](pg, PROMPT, 7)
    assert message(excinfo) == f"Guidance scale must be in [0, {MAX_GUIDANCE:g}], got 7."
    with pytest.raises(gr.Error, match="Guidance scale must be"):
        HANDLERS[handler](pg, "", -1)                                       # checked even without a prompt


@pytest.mark.parametrize("handler", list(HANDLERS))
@pytest.mark.parametrize("value", BAD_PROMPT, ids=repr)
def test_bad_prompts_are_refused_naming_the_field(pg, handler, value):
    with pytest.raises(gr.Error) as excinfo:
        HANDLERS[handler](pg, value, 1.0)
    assert message(excinfo).startswith("Prompt must be text, got "), message(excinfo)


def test_guidance_range_covers_a_higher_default(pg, monkeypatch):
    monkeypatch.setattr(pg.pipe.sampling, "guidance_scale", 7.5)
    assert pg.max_guidance == 7.5
    assert "guidance 7)" in generate(pg, PROMPT, 7)[1]
    with pytest.raises(gr.Error, match=r"Guidance scale must be in \[0, 7.5\]"):
        generate(pg, PROMPT, 7.6)


def test_integral_and_boundary_guidance_values(pg):
    assert "guidance 0)" in generate(pg, PROMPT, 0)[1]
    assert f"guidance {MAX_GUIDANCE:g})" in generate(pg, PROMPT, MAX_GUIDANCE)[1]


# --- unconditional checkpoints ---------------------------------------------------------------------
@pytest.mark.parametrize("handler", list(HANDLERS))
def test_an_unconditional_checkpoint_refuses_prompts(plain, handler):
    with pytest.raises(gr.Error) as excinfo:
        HANDLERS[handler](plain, PROMPT, 1.0)
    assert message(excinfo) == REFUSAL
    assert "python app.py --checkpoint assets/cosmos-story-cpu" in REFUSAL and "`story-cpu` preset" in REFUSAL
    assert (REPO / STORY_CHECKPOINT / "model_index.json").is_file()     # the note names a checkpoint that ships


@pytest.mark.parametrize("handler", list(HANDLERS))
def test_an_unconditional_checkpoint_takes_an_empty_prompt(plain, handler):
    assert HANDLERS[handler](plain, "  ", 1.0)
    with pytest.raises(gr.Error, match="Guidance scale must be"):
        HANDLERS[handler](plain, "", math.nan)


def test_unconditional_generate_is_unchanged(plain):
    rows, info, produced = generate(plain, "", 1.0)
    old_style = generate_tab.generate(plain, 2, 3, "sde", 5)                 # callers that send four values
    assert rows == old_style[0] and torch.equal(produced.latents, old_style[2].latents)
    assert info.endswith("per sample).") and "Prompt" not in info


# --- trajectory ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prompted_run(pg):
    return drain(pg, PROMPT, 1.5, steps=5, sampler="ddim", seed=3)


def test_prompted_trajectory_streams_the_prompt_first(prompted_run):
    updates, run = prompted_run
    assert len(updates) == 5 and (run.prompt, run.guidance_scale) == (PROMPT, 1.5)
    for i, (highlighted, _figure, _slider, caption, _state) in enumerate(updates):
        assert highlighted[0] == (f"{PROMPT} → ", prompt_box.PROMPT_LABEL)
        assert prompt_box.PROMPT_LABEL not in [label for _, label in highlighted[1:]]
        assert highlighted == run.highlighted(i) and caption.startswith(run.caption(i))
        assert run.text(i) == "".join(piece for piece, _ in highlighted[1:])
    assert updates[-1][3].endswith(f"<br>final sample: {PROMPT} → {run.final_text or '(empty)'} (guidance 1.5)")


def test_prompted_trajectory_ends_on_generate(pg, prompted_run):
    _, run = prompted_run
    out = pg.pipe.generate(1, steps=5, sampler="ddim", seed=3, prompt=PROMPT, guidance_scale=1.5)
    assert run.final_text == out.texts[0] and torch.allclose(run.final_latent, out.latents[0], atol=1e-6)
    assert generate(pg, PROMPT, 1.5, num=1, steps=5, sampler="ddim", seed=3)[0][0][1] == \
        f"{PROMPT} → {run.final_text or generate_tab.EMPTY}"


def test_prompted_trajectory_is_deterministic(pg, prompted_run):
    updates, run = prompted_run
    again_updates, again = drain(pg, PROMPT, 1.5, steps=5, sampler="ddim", seed=3)
    assert [u[0] for u in again_updates] == [u[0] for u in updates]
    assert again.distance == run.distance and all(torch.equal(a, b) for a, b in zip(again.x0, run.x0))
    _, other = drain(pg, PROMPT, 0.0, steps=5, sampler="ddim", seed=3)
    assert not all(torch.equal(a, b) for a, b in zip(other.x0, run.x0))


def test_scrubbing_a_prompted_run_replays_the_stream(prompted_run):
    updates, run = prompted_run
    for step in range(1, run.steps + 1):
        highlighted, figure, caption = trajectory_tab.show_step(run, step)
        assert highlighted == updates[step - 1][0] and caption == run.caption(step - 1)
        assert figure.layout.shapes[0].x0 == step


def test_an_unprompted_run_on_a_conditional_checkpoint(pg):
    updates, run = drain(pg, "", 4.0, steps=3, seed=1)
    out = pg.pipe.generate(1, steps=3, sampler="sde", seed=1)
    assert run.prompt is None and run.guidance_scale is None and run.final_text == out.texts[0]
    assert all(label != prompt_box.PROMPT_LABEL for u in updates for _, label in u[0])
    assert "guidance" not in updates[-1][3]


def test_map_overlay_of_a_prompted_run_holds_the_continuations(prompted_run):
    _, run = prompted_run
    overlay = latent_map_tab._trajectory_overlay(run)
    assert all(PROMPT not in text for text in overlay.texts)
    assert overlay.texts[0] == f"step 1: {run.text(0)}" and overlay.latents.shape == (run.steps + 1, TINY_N, D)


# --- the page --------------------------------------------------------------------------------------
def _components(demo, kind, label):
    return [b for b in demo.blocks.values() if isinstance(b, kind) and getattr(b, "label", None) == label]


def test_controls_are_active_on_a_conditional_checkpoint(pg):
    demo = build_demo(pg)
    boxes, sliders = _components(demo, gr.Textbox, "Prompt (optional)"), _components(demo, gr.Slider, "Guidance scale")
    assert len(boxes) == len(sliders) == 2                                # Generate and Denoising trajectory
    assert all(b.interactive is not False for b in boxes + sliders)
    assert all((s.minimum, s.maximum, s.value, s.step) == (0, MAX_GUIDANCE, TINY_GUIDANCE, 0.1) for s in sliders)
    notes = [b for b in demo.blocks.values() if isinstance(b, gr.Markdown) and UNCONDITIONAL_NOTE in str(b.value)]
    assert not notes


def test_controls_are_hidden_with_a_note_on_an_unconditional_checkpoint(plain):
    demo = build_demo(plain)
    boxes, sliders = _components(demo, gr.Textbox, "Prompt (optional)"), _components(demo, gr.Slider, "Guidance scale")
    assert len(boxes) == len(sliders) == 2
    assert all(b.visible is False for b in boxes + sliders)
    notes = [b for b in demo.blocks.values() if isinstance(b, gr.Markdown) and UNCONDITIONAL_NOTE in str(b.value)]
    assert len(notes) == 2


@pytest.mark.parametrize("fixture", ["pg", "plain"])
def test_api_takes_the_prompt_and_guidance_last_with_defaults(fixture, request):
    playground = request.getfixturevalue(fixture)
    api = build_demo(playground).get_api_info()["named_endpoints"]
    expected = {"/generate": ["num", "steps", "sampler", "seed", "prompt", "guidance_scale"],
                "/trajectory": ["steps", "sampler", "seed", "prompt", "guidance_scale"]}
    for endpoint, names in expected.items():
        params = api[endpoint]["parameters"]
        assert [p["parameter_name"] for p in params] == names
        prompt, guidance = params[-2:]
        assert prompt["parameter_has_default"] and prompt["parameter_default"] == ""
        assert guidance["parameter_has_default"] and guidance["parameter_default"] == playground.guidance_default


def test_about_says_whether_prompts_work(pg, plain):
    row = dict(about_tab.summary_rows(pg))["prompts"]
    assert row.startswith("yes") and f"{TINY_PROMPT_LEN} prompt tokens" in row and f"w = {TINY_GUIDANCE:g}" in row
    assert dict(about_tab.summary_rows(plain))["prompts"].startswith("no: unconditional")
    assert "| prompts | yes" in about_tab.about_markdown(pg)
