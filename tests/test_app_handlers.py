"""The playground's handlers, called directly (no server): outputs agree with the pipeline, runs are
deterministic, every field is validated with a gr.Error naming it, failures never leak tracebacks,
and the latent map draws each tab's results. Uses the module-scoped ``tiny_playground`` (tiny random
model, 26-point latent map)."""

from __future__ import annotations

import dataclasses
import logging
import math

import gradio as gr
import pytest
import torch

from app import Limits, about_tab, build_demo, generate_tab, inputs, interpolate_tab, latent_map_tab, \
    trajectory_tab, ui, vary_tab
from app.context import Produced
from app.trajectory_tab import Trajectory
from cosmos import CheckpointError

from conftest import PLAYGROUND_LIMITATIONS, PLAYGROUND_REFERENCE, PLAYGROUND_SAMPLES, TINY_L, TINY_N

D = 64                                   # latent width of the tiny model
MAP_POINTS = len(PLAYGROUND_REFERENCE) + PLAYGROUND_SAMPLES
LONG_WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
             "sixteen seventeen eighteen nineteen twenty"          # > TINY_L tokens, < 2000 chars
TEXT_A, TEXT_B = "the cat sat on the mat", "a dog ran in the park"


@pytest.fixture(scope="module")
def pg(tiny_playground):
    return tiny_playground


def limited(pg, **limits):
    """The same playground (same pipeline and map) under other per-request limits."""
    return dataclasses.replace(pg, limits=Limits(**limits))


def shown(text: str) -> str:
    """What a table row shows for a decoded text."""
    return text or "(empty)"


def error_message(excinfo) -> str:
    return excinfo.value.message


# --- generate --------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["sde", "ddim", "dpm2m"])
def test_generate_rows_match_the_pipeline(pg, sampler):
    rows, info, produced = generate_tab.generate(pg, 3, 4, sampler, 5)
    out = pg.pipe.generate(3, steps=4, sampler=sampler, seed=5)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [r[1] for r in rows] == [t or "(empty: the decoder put [SEP] first)" for t in out.texts]
    assert isinstance(produced, Produced) and produced.texts == out.texts
    assert produced.latents.shape == (3, TINY_N, D) and torch.equal(produced.latents, out.latents)
    assert f"3 samples x 4 steps ({sampler.upper()}, seed 5)" in info


def test_generate_is_deterministic_and_seeded(pg):
    first = generate_tab.generate(pg, 2, 3, "sde", 9)
    again = generate_tab.generate(pg, 2.0, 3.0, "sde", 9.0)     # sliders send integral floats
    other = generate_tab.generate(pg, 2, 3, "sde", 10)
    assert first[0] == again[0] and torch.equal(first[2].latents, again[2].latents)
    assert not torch.equal(first[2].latents, other[2].latents)
    assert "1 sample x" in generate_tab.generate(pg, 1, 2, "ddim", 0)[1]


def test_generate_shows_a_placeholder_for_empty_texts(pg, monkeypatch):
    from cosmos import GenerationOutput
    monkeypatch.setattr(pg.pipe, "generate", lambda num, **kw: GenerationOutput(["", "word"],
                                                                                 torch.zeros(2, TINY_N, D)))
    rows, _, produced = generate_tab.generate(pg, 2, 1, "sde", 0)
    assert rows == [[1, "(empty: the decoder put [SEP] first)"], [2, "word"]]
    assert produced.texts == ["", "word"]


def test_generate_reports_progress(pg):
    calls = []
    generate_tab.generate(pg, 5, 3, "ddim", 0, progress=lambda value, desc=None: calls.append(value))
    # batch_size 4: chunks of 4 and 1, 3 steps each
    assert calls == [(i, 6) for i in range(1, 7)]


def test_random_seed_is_in_range():
    seeds = {generate_tab.random_seed() for _ in range(20)}
    assert all(isinstance(s, int) and 0 <= s <= generate_tab.MAX_SEED for s in seeds) and len(seeds) > 1


# --- trajectory ------------------------------------------------------------------------------
def _drain(pg, steps, sampler, seed):
    updates = list(trajectory_tab.run_trajectory(pg, steps, sampler, seed))
    return updates, updates[-1][4]


@pytest.fixture(scope="module")
def ddim_run(pg):
    return _drain(pg, 5, "ddim", 3)


@pytest.mark.parametrize("sampler", ["sde", "ddim"])
def test_trajectory_streams_one_update_per_step(pg, sampler):
    steps = 4
    updates, run = _drain(pg, steps, sampler, 7)
    assert len(updates) == steps and all(len(u) == 5 for u in updates)
    for i, (highlighted, figure, slider, caption, state) in enumerate(updates[:-1]):
        assert state == gr.skip()                              # the session keeps no half-finished run
        assert isinstance(slider, gr.Slider) and slider.visible is False
        assert highlighted == run.highlighted(i) and caption == run.caption(i)
        if figure != gr.skip():                                    # charts are redrawn at most every 0.3 s
            assert len(figure.data) == 2                           # distance curve not known yet
            assert any("shown when the run ends" in a.text for a in figure.layout.annotations)
    highlighted, figure, slider, caption, _ = updates[-1]
    assert isinstance(run, Trajectory) and (run.steps, run.sampler, run.seed) == (steps, sampler, 7)
    assert highlighted == run.highlighted(steps - 1)
    assert isinstance(slider, gr.Slider) and slider.visible is True and slider.interactive is True
    assert (slider.minimum, slider.maximum, slider.value) == (1, steps, steps)
    assert caption.startswith(run.caption(steps - 1)) and "final sample:" in caption
    assert [trace.name for trace in figure.data] == ["distance", "changed", "σ(t)"]


@pytest.mark.parametrize("sampler", ["sde", "ddim"])
def test_finished_trajectory_matches_generate(pg, sampler):
    steps = 5
    _, run = _drain(pg, steps, sampler, 11)
    out = pg.pipe.generate(1, steps=steps, sampler=sampler, seed=11)
    assert run.final_text == out.texts[0]
    assert torch.allclose(run.final_latent, out.latents[0], atol=1e-6)
    assert len(run.pieces) == len(run.changed) == len(run.sigmas) == len(run.x0) == len(run.distance) == steps
    assert all(x0.shape == (TINY_N, D) for x0 in run.x0)
    # distance[i] = ||x0_i - z_final|| / ||z_final|| (the last x0 estimate is not the sample itself)
    scale = float(run.final_latent.norm())
    for x0, dist in zip(run.x0, run.distance):
        assert math.isfinite(dist) and dist >= 0
        assert dist == pytest.approx(float((x0 - run.final_latent).norm()) / scale, rel=1e-6)
    assert run.sigmas == sorted(run.sigmas, reverse=True)      # noise goes down step by step
    assert run.changed[0] == len(run.pieces[0])                # everything is new at the first step
    assert run.changed == [sum(flag for _, flag in pieces) for pieces in run.pieces]
    assert all(0 <= c <= TINY_L for c in run.changed)


def test_trajectory_is_deterministic(pg, ddim_run):
    updates, run = ddim_run
    again_updates, again = _drain(pg, 5, "ddim", 3)
    assert [u[0] for u in again_updates] == [u[0] for u in updates]
    assert again.distance == run.distance and again.final_text == run.final_text


def test_show_step_scrubs_to_what_the_run_showed(ddim_run):
    updates, run = ddim_run
    for step in range(1, run.steps + 1):
        highlighted, figure, caption = trajectory_tab.show_step(run, step)
        assert highlighted == updates[step - 1][0]
        assert caption == run.caption(step - 1)
        assert figure.layout.shapes[0].x0 == step                   # the marker sits on that step (1-based)
    assert trajectory_tab.show_step(run, float(run.steps))[2] == run.caption(run.steps - 1)


def test_highlighted_joins_wordpieces():
    run = Trajectory(1, "ddim", 0, pieces=[[("the", False), ("cat", True), ("##s", True)]])
    assert run.highlighted(0) == [("the", None), (" cat", trajectory_tab.CHANGED), ("s", trajectory_tab.CHANGED)]
    run.pieces.append([])
    assert run.highlighted(1) == [("(empty: [SEP] came first)", None)]


@pytest.mark.parametrize("step", [0, 6, -1, 2.5, "2", None, True, math.nan, math.inf, 10**20])
def test_show_step_rejects_bad_steps(ddim_run, step):
    with pytest.raises(gr.Error) as excinfo:
        trajectory_tab.show_step(ddim_run[1], step)
    assert error_message(excinfo).startswith("Step must be")


def test_show_step_without_a_run(pg):
    with pytest.raises(gr.Error, match="Run a trajectory first"):
        trajectory_tab.show_step(None, 1)


# --- interpolate -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["lerp", "slerp", "noise"])
def test_interpolate_rows(pg, method):
    rows, figure, info, produced = interpolate_tab.interpolate(pg, TEXT_A, TEXT_B, 5, method)
    out = pg.pipe.interpolate(TEXT_A, TEXT_B, k=5, method=method, steps=interpolate_tab.NOISE_STEPS)
    assert len(rows) == 5 and [r[0] for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [r[1] for r in rows] == [shown(t) for t in out.texts]
    assert produced.texts == out.texts and produced.latents.shape == (5, TINY_N, D)
    distinct = 0
    for i, row in enumerate(rows):
        new = i == 0 or produced.texts[i] != produced.texts[i - 1]
        distinct += new
        assert row[2] == ("● new" if new else "same as above")
    assert f"5 points by {method}" in info and f"**{distinct} distinct texts**" in info
    assert [trace.name for trace in figure.data] == ["distance to text A", "distance to text B"]
    if method != "noise":   # latent-space paths start and end on the texts' own latents
        ends = pg.pipe.decode(pg.pipe.encode([TEXT_A, TEXT_B]))
        assert rows[0][1] == shown(ends[0]) and rows[-1][1] == shown(ends[1])
        to_a, to_b = figure.data[0].y, figure.data[1].y
        assert to_a[0] == pytest.approx(0, abs=1e-5) and to_b[-1] == pytest.approx(0, abs=1e-5)
        assert to_a[-1] == pytest.approx(1, abs=1e-5) and to_b[0] == pytest.approx(1, abs=1e-5)


def test_lerp_distances_are_the_path_weights(pg):
    _, figure, _, _ = interpolate_tab.interpolate(pg, TEXT_A, TEXT_B, 6, "lerp")
    weights = [i / 5 for i in range(6)]
    assert list(figure.data[0].x) == pytest.approx(weights)
    assert list(figure.data[0].y) == pytest.approx(weights, abs=1e-5)
    assert list(figure.data[1].y) == pytest.approx([1 - w for w in weights], abs=1e-5)


def test_interpolate_is_deterministic(pg):
    first = interpolate_tab.interpolate(pg, TEXT_A, TEXT_B, 4, "noise")
    again = interpolate_tab.interpolate(pg, TEXT_A, TEXT_B, 4.0, "noise")
    assert first[0] == again[0] and torch.equal(first[3].latents, again[3].latents)


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolating_a_text_with_itself(pg, method):
    rows, figure, info, produced = interpolate_tab.interpolate(pg, TEXT_A, TEXT_A, 3, method)
    assert [r[2] for r in rows] == ["● new", "same as above", "same as above"] and "**1 distinct texts**" in info
    assert all(math.isfinite(y) and y == pytest.approx(0, abs=1e-5) for t in figure.data for y in t.y)


def test_interpolate_strips_the_texts(pg):
    rows = interpolate_tab.interpolate(pg, f"  {TEXT_A}\n", f"\t{TEXT_B} ", 3, "lerp")[0]
    assert rows == interpolate_tab.interpolate(pg, TEXT_A, TEXT_B, 3, "lerp")[0]


# --- vary ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["sde", "ddim"])
def test_vary_rows(pg, sampler):
    text = "the sun was hot today"
    rows, info, produced = vary_tab.vary(pg, text, 0.5, 3, 6, sampler, 2)
    out = pg.pipe.vary(text, strength=0.5, num=3, steps=6, sampler=sampler, seed=2)
    original = pg.pipe.encode([text])
    assert rows[0] == ["reconstruction (no noise)", shown(pg.pipe.decode(original)[0])]
    assert rows[1:] == [[f"variation {i + 1}", shown(t)] for i, t in enumerate(out.texts)]
    assert produced.texts == [pg.pipe.decode(original)[0], *out.texts]
    assert produced.latents.shape == (4, TINY_N, D)
    assert torch.allclose(produced.latents[0], original[0]) and torch.equal(produced.latents[1:], out.latents)
    assert f"then 3 {sampler.upper()} steps (seed 2)" in info


def test_vary_is_deterministic(pg):
    first = vary_tab.vary(pg, "a quiet morning", 0.7, 2, 4, "sde", 5)
    again = vary_tab.vary(pg, "a quiet morning", 0.7, 2.0, 4.0, "sde", 5.0)
    assert first[0] == again[0] and torch.equal(first[2].latents, again[2].latents)


def test_vary_runs_at_least_one_step(pg):
    assert "then 1 SDE steps" in vary_tab.vary(pg, "a quiet morning", 0.01, 1, 4, "sde", 0)[1]
    assert "then 4 DDIM steps" in vary_tab.vary(pg, "a quiet morning", 1, 1, 4, "ddim", 0)[1]


# --- validation: every field, every handler --------------------------------------------------
GOOD = {
    "generate": dict(num=2, steps=2, sampler="ddim", seed=0),
    "trajectory": dict(steps=2, sampler="ddim", seed=0),
    "interpolate": dict(text_a=TEXT_A, text_b=TEXT_B, points=3, method="lerp"),
    "vary": dict(text="the sun was hot", strength=0.5, num=2, steps=2, sampler="ddim", seed=0),
}
FIELDS = {   # handler -> argument -> the name its error messages use
    "generate": {"num": "Number of samples", "steps": "Steps", "sampler": "Sampler", "seed": "Seed"},
    "trajectory": {"steps": "Steps", "sampler": "Sampler", "seed": "Seed"},
    "interpolate": {"text_a": "Text A", "text_b": "Text B", "points": "Number of points", "method": "Method"},
    "vary": {"text": "Text", "strength": "Strength", "num": "Number of variations", "steps": "Steps",
             "sampler": "Sampler", "seed": "Seed"},
}
KINDS = {"num": "int", "steps": "int", "seed": "int", "points": "int", "sampler": "choice", "method": "choice",
         "text": "text", "text_a": "text", "text_b": "text", "strength": "strength"}
BAD = {
    "int": [None, "4", "", True, False, 2.5, math.nan, math.inf, -math.inf, -1, 10**12, 1e300, [2], {"v": 2}],
    "choice": [None, "", "bogus", "SDE", 1, ["ddim"]],
    "text": [None, "", "   \n\t \u3000", 5, 1.5, True, b"bytes", ["a list"]],
    "strength": [0, 0.0, -0.5, 1.0001, 2, math.nan, math.inf, -math.inf, None, "0.5", True, [0.5]],
}


def call(pg, handler: str, **args):
    """Run a handler to its end (draining the trajectory generator)."""
    if handler == "generate":
        return generate_tab.generate(pg, **args)
    if handler == "trajectory":
        return list(trajectory_tab.run_trajectory(pg, **args))
    if handler == "interpolate":
        return interpolate_tab.interpolate(pg, **args)
    return vary_tab.vary(pg, **args)


CASES = [(handler, arg, value) for handler, fields in FIELDS.items() for arg in fields
         for value in BAD[KINDS[arg]]]


@pytest.mark.parametrize("handler,arg,value", CASES, ids=[f"{h}-{a}-{v!r}"[:60] for h, a, v in CASES])
def test_bad_values_raise_an_error_naming_the_field(pg, handler, arg, value):
    with pytest.raises(gr.Error) as excinfo:
        call(pg, handler, **{**GOOD[handler], arg: value})
    message = error_message(excinfo)
    assert message.startswith(FIELDS[handler][arg] + " "), message
    assert "Traceback" not in message and "Something went wrong" not in message


@pytest.mark.parametrize("handler", list(GOOD))
def test_good_values_run(pg, handler):
    assert call(pg, handler, **GOOD[handler])


@pytest.mark.parametrize("handler", ["generate", "vary"])
def test_integer_errors_name_the_range(pg, handler):
    with pytest.raises(gr.Error) as excinfo:
        call(pg, handler, **{**GOOD[handler], "num": 17})
    assert "between 1 and 16, got 17" in error_message(excinfo)
    with pytest.raises(gr.Error) as excinfo:
        call(pg, handler, **{**GOOD[handler], "seed": 2**32})
    assert "between 0 and 4,294,967,295" in error_message(excinfo)


def test_strength_error_names_the_range(pg):
    for too_small in (0, vary_tab.MIN_STRENGTH / 2):
        with pytest.raises(gr.Error) as excinfo:
            call(pg, "vary", **{**GOOD["vary"], "strength": too_small})
        assert error_message(excinfo) == f"Strength must be in [{vary_tab.MIN_STRENGTH:g}, 1], got {too_small!r}."


def test_huge_integer_strength_names_the_field(pg):
    with pytest.raises(gr.Error) as excinfo:
        call(pg, "vary", **{**GOOD["vary"], "strength": 10**400})
    assert error_message(excinfo).startswith("Strength ")


@pytest.mark.parametrize("handler", ["generate", "vary"])
def test_work_budget(pg, handler):
    small = limited(pg, max_sample_steps=12)
    assert call(small, handler, **{**GOOD[handler], "num": 3, "steps": 4})      # exactly the budget
    with pytest.raises(gr.Error) as excinfo:
        call(small, handler, **{**GOOD[handler], "num": 3, "steps": 5})
    assert error_message(excinfo) == ("3 samples x 5 steps is more than this server runs per request "
                                      "(12 sample-steps): use at most 4 steps for 3 samples.")


def test_noise_interpolation_is_inside_the_work_budget(pg):
    tight = limited(pg, max_sample_steps=interpolate_tab.NOISE_STEPS * 3)
    assert len(interpolate_tab.interpolate(tight, TEXT_A, TEXT_B, 3, "noise")[0]) == 3
    with pytest.raises(gr.Error, match="4 samples x 50 steps"):
        interpolate_tab.interpolate(tight, TEXT_A, TEXT_B, 4, "noise")
    assert len(interpolate_tab.interpolate(tight, TEXT_A, TEXT_B, 4, "lerp")[0]) == 4   # no sampler: no budget


@pytest.mark.parametrize("handler,arg", [("generate", "sampler"), ("trajectory", "sampler"),
                                         ("interpolate", "method"), ("vary", "seed")])
def test_user_values_in_messages_are_escaped(pg, handler, arg):
    value = "<script>alert('x')</script>"
    with pytest.raises(gr.Error) as excinfo:
        call(pg, handler, **{**GOOD[handler], arg: value})
    message = error_message(excinfo)
    assert "<script>" not in message and "&lt;script&gt;" in message


def test_long_values_are_shortened_in_messages(pg):
    with pytest.raises(gr.Error) as excinfo:
        call(pg, "generate", **{**GOOD["generate"], "sampler": "x" * 500})
    assert len(error_message(excinfo)) < 150 and error_message(excinfo).endswith("….")


def test_requests_over_the_time_limit_are_stopped(pg):
    hasty = limited(pg, max_seconds=1e-6, gflops=math.inf)     # predicted to fit; stopped while it runs
    calls = {"generate": lambda: generate_tab.generate(hasty, 2, 3, "ddim", 0),
             "trajectory": lambda: list(trajectory_tab.run_trajectory(hasty, 3, "ddim", 0)),
             "interpolate": lambda: interpolate_tab.interpolate(hasty, TEXT_A, TEXT_B, 2, "noise"),
             "vary": lambda: vary_tab.vary(hasty, TEXT_A, 0.5, 2, 3, "ddim", 0)}
    for name, fn in calls.items():
        with pytest.raises(gr.Error) as excinfo:
            fn()
        assert error_message(excinfo).startswith("This request ran past the server's 1e-06 s limit"), name


# --- long texts ------------------------------------------------------------------------------
def test_long_text_is_cut_with_a_warning(pg):
    short = limited(pg, max_text_chars=30)
    text = "the sun was hot " * 20                      # 320 characters, 319 without the trailing blank
    with pytest.warns(UserWarning, match="Text is 319 characters long; only the first 30 are used"):
        rows, _, produced = vary_tab.vary(short, text, 0.5, 1, 2, "ddim", 0)
    kept = text[:30].strip()
    assert rows[0][1] == shown(pg.pipe.decode(pg.pipe.encode([kept]))[0])
    assert torch.allclose(produced.latents[0], pg.pipe.encode([kept])[0])


def test_long_texts_are_cut_in_interpolation_and_map(pg):
    short = limited(pg, max_text_chars=30)
    with pytest.warns(UserWarning, match="Text B is 2,099 characters long; only the first 30"):
        rows = interpolate_tab.interpolate(short, TEXT_A, "hello " * 350, 3, "lerp")[0]
    assert len(rows) == 3
    with pytest.warns(UserWarning, match="Your texts is 99 characters long"):
        _, summary = latent_map_tab.draw_map(short, "word " * 20, ["your texts"], None, None, None, None)
    assert "your texts (1)" in summary


def test_surrounding_blanks_do_not_count_towards_the_cut():
    assert inputs.text(" " * 30 + "hello" + "\n" * 30, "Text", 30) == "hello"
    with pytest.raises(gr.Error, match="Text is empty"):
        inputs.text(" " * 300, "Text", 30)


@pytest.mark.parametrize("handler", ["interpolate", "vary"])
def test_texts_over_the_models_tokens_give_the_truncation_notice(pg, handler):
    notice = f"The model reads at most {TINY_L} tokens per text"
    args = {"interpolate": {"text_a": LONG_WORDS}, "vary": {"text": LONG_WORDS}}[handler]
    with pytest.warns(UserWarning, match=notice) as caught:
        assert call(pg, handler, **{**GOOD[handler], **args})
    assert not [w for w in caught if "only the first" in str(w.message)]   # not cut by characters


def test_short_texts_give_no_notice(pg, recwarn):
    interpolate_tab.interpolate(pg, TEXT_A, TEXT_B, 2, "lerp")
    vary_tab.vary(pg, TEXT_A, 0.5, 1, 2, "ddim", 0)
    assert not [w for w in recwarn if "tokens per text" in str(w.message) or "characters long" in str(w.message)]


# --- inputs.user_facing ----------------------------------------------------------------------
@pytest.mark.parametrize("error", [RuntimeError("secret /srv/model.py line 3"), KeyError("secret_key"),
                                   ZeroDivisionError("secret division"), OverflowError("secret")])
def test_unexpected_errors_become_a_generic_message(error, caplog):
    @inputs.user_facing
    def broken_handler(x):
        raise error

    with caplog.at_level(logging.ERROR, logger="cosmos.app"), pytest.raises(gr.Error) as excinfo:
        broken_handler(1)
    message = error_message(excinfo)
    assert message.startswith(f"Something went wrong in broken handler ({type(error).__name__})")
    assert "secret" not in message and "Traceback" not in message
    assert excinfo.value.__cause__ is error
    assert any(r.exc_info and r.exc_info[1] is error for r in caplog.records)   # logged with its traceback


@pytest.mark.parametrize("error", [ValueError("bad <b>value</b> & more"), TypeError("bad <b>value</b> & more"),
                                   CheckpointError("bad <b>value</b> & more")])
def test_expected_errors_keep_their_message_escaped(error):
    @inputs.user_facing
    def handler():
        raise error

    with pytest.raises(gr.Error) as excinfo:
        handler()
    assert error_message(excinfo) == "bad &lt;b&gt;value&lt;/b&gt; &amp; more"


def test_gr_errors_pass_through_unchanged():
    original = gr.Error("Steps must be <b>kept</b>")

    @inputs.user_facing
    def handler():
        raise original

    with pytest.raises(gr.Error) as excinfo:
        handler()
    assert excinfo.value is original


def test_user_facing_wraps_generators():
    @inputs.user_facing
    def streaming(n):
        yield from range(n)
        raise RuntimeError("secret")

    @inputs.user_facing
    def value_error_stream():
        yield 1
        raise ValueError("<i>no</i>")

    assert streaming.__name__ == "streaming"
    gen = streaming(2)
    assert next(gen) == 0 and next(gen) == 1
    with pytest.raises(gr.Error) as excinfo:
        next(gen)
    assert error_message(excinfo).startswith("Something went wrong in streaming (RuntimeError)")
    assert "secret" not in error_message(excinfo)
    with pytest.raises(gr.Error) as excinfo:
        list(value_error_stream())
    assert error_message(excinfo) == "&lt;i&gt;no&lt;/i&gt;"


def test_user_facing_keeps_results_and_names():
    @inputs.user_facing
    def add(a, b=1):
        return a + b

    assert add(2, b=3) == 5 and add.__name__ == "add"


def test_pipeline_failures_in_a_handler_do_not_leak(pg, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory at /secret/path")

    monkeypatch.setattr(pg.pipe, "generate", boom)
    with pytest.raises(gr.Error) as excinfo:
        generate_tab.generate(pg, 1, 1, "sde", 0)
    assert "secret" not in error_message(excinfo) and "(RuntimeError)" in error_message(excinfo)


def test_pipeline_failures_in_a_streaming_handler_do_not_leak(pg, monkeypatch):
    def boom(*args, **kwargs):
        yield from ()
        raise KeyError("secret")

    monkeypatch.setattr(pg.pipe, "trajectory", boom)
    with pytest.raises(gr.Error) as excinfo:
        list(trajectory_tab.run_trajectory(pg, 2, "sde", 0))
    assert error_message(excinfo).startswith("Something went wrong in run trajectory (KeyError)")


# --- latent map ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def produced(pg, ddim_run):
    """Each tab's latest result, as the session states hold them."""
    return {"generated samples": generate_tab.generate(pg, 3, 2, "sde", 0)[2],
            "interpolation path": interpolate_tab.interpolate(pg, TEXT_A, TEXT_B, 4, "slerp")[3],
            "variations": vary_tab.vary(pg, TEXT_A, 0.5, 2, 2, "ddim", 0)[2],
            "denoising trajectory": ddim_run[1]}


def draw(pg, own, layers, produced=None):
    produced = produced or {}
    return latent_map_tab.draw_map(pg, own, layers, produced.get("generated samples"),
                                   produced.get("interpolation path"), produced.get("denoising trajectory"),
                                   produced.get("variations"))


def overlay_trace(figure, name):
    (trace,) = [t for t in figure.data if t.name == name]
    return trace


def test_base_map_has_one_trace_per_source(pg):
    figure = latent_map_tab.base_figure(pg)
    assert sorted(t.name for t in figure.data) == ["animals", "model sample", "weather"]
    assert sum(len(t.x) for t in figure.data) == MAP_POINTS
    figure, summary = draw(pg, "", None)
    assert summary == f"{MAP_POINTS} reference points."
    assert sorted(t.name for t in figure.data) == ["animals", "model sample", "weather"]


@pytest.mark.parametrize("layer", [layer for layer in latent_map_tab.LAYERS if layer != "your texts"])
def test_each_overlay_layer(pg, produced, layer):
    figure, summary = draw(pg, "", [layer], produced)
    value = produced[layer]
    count = len(value.texts) if isinstance(value, Produced) else len(latent_map_tab._trajectory_overlay(value).texts)
    assert f"placed: {layer} ({count})" in summary and "Not drawn" not in summary
    trace = overlay_trace(figure, layer)
    assert len(trace.x) == len(trace.y) == count
    assert all(math.isfinite(v) for v in (*trace.x, *trace.y))
    path = layer in ("interpolation path", "denoising trajectory")
    assert trace.mode == ("lines+markers" if path else "markers")


def test_your_texts_overlay(pg):
    own = "The cat slept.\n\n   \nIt rained all day.\n"
    figure, summary = draw(pg, own, ["your texts"])
    assert summary == f"{MAP_POINTS} reference points; placed: your texts (2)."
    trace = overlay_trace(figure, "your texts")
    expected = pg.latent_map.transform(pg.pipe.encode(["The cat slept.", "It rained all day."]))
    assert list(trace.x) == pytest.approx(expected[:, 0].tolist())
    assert list(trace.y) == pytest.approx(expected[:, 1].tolist())
    again, _ = draw(pg, own, ["your texts"])
    assert list(overlay_trace(again, "your texts").x) == list(trace.x)   # placing is deterministic


def test_all_layers_together(pg, produced):
    figure, summary = draw(pg, "one line", list(latent_map_tab.LAYERS), produced)
    names = [t.name for t in figure.data]
    assert all(layer in names for layer in latent_map_tab.LAYERS)
    assert "Not drawn" not in summary


@pytest.mark.parametrize("layer,tab", [("generated samples", "Generate"), ("interpolation path", "Interpolate"),
                                       ("variations", "Vary / edit"), ("denoising trajectory", "Denoising trajectory")])
def test_layers_whose_tab_has_not_run_are_reported(pg, produced, layer, tab):
    others = {k: v for k, v in produced.items() if k != layer}
    figure, summary = draw(pg, "", list(latent_map_tab.LAYERS[1:]), others)
    assert f"Not drawn: {layer}: run the {tab} tab first." in summary
    names = [t.name for t in figure.data]
    assert layer not in names and all(other in names for other in others)


def test_an_unfinished_trajectory_is_not_drawn(pg):
    running = Trajectory(3, "sde", 0)                     # what a run holds before its last step
    _, summary = draw(pg, "", ["denoising trajectory"], {"denoising trajectory": running})
    assert "Not drawn: denoising trajectory: run the Denoising trajectory tab first" in summary


def test_unchosen_layers_are_not_drawn_or_reported(pg, produced):
    figure, summary = draw(pg, "", ["variations"], produced)
    assert [t.name for t in figure.data if t.name in latent_map_tab.LAYERS] == ["variations"]
    assert "Not drawn" not in summary


def test_trajectory_overlay_of_a_long_run_is_subsampled(pg):
    _, run = _drain(pg, 45, "ddim", 0)
    overlay = latent_map_tab._trajectory_overlay(run)
    assert len(overlay.texts) == latent_map_tab.MAX_TRAJECTORY_POINTS + 1
    assert overlay.texts[0].startswith("step 1: ") and overlay.texts[-2].startswith("step 45: ")
    assert overlay.texts[-1] == f"final sample: {run.final_text}"
    assert overlay.latents.shape == (len(overlay.texts), TINY_N, D)


def test_trajectory_overlay_of_a_short_run_has_every_step(ddim_run):
    run = ddim_run[1]                                      # 5 steps
    overlay = latent_map_tab._trajectory_overlay(run)
    assert [t.split(":")[0] for t in overlay.texts] == [f"step {i}" for i in range(1, 6)] + ["final sample"]


def test_too_many_own_lines_are_capped(pg):
    few = limited(pg, max_map_texts=3)
    with pytest.warns(UserWarning, match="Only the first 3 of your 5 lines are placed"):
        figure, summary = draw(few, "a\nb\nc\nd\ne", ["your texts"])
    assert "your texts (3)" in summary and len(overlay_trace(figure, "your texts").x) == 3


def test_own_texts_over_the_models_tokens_give_the_truncation_notice(pg):
    with pytest.warns(UserWarning, match=f"at most {TINY_L} tokens"):
        draw(pg, f"short line\n{LONG_WORDS}", ["your texts"])


@pytest.mark.parametrize("own", ["", "  \n \n", None, 3])
def test_own_texts_are_validated_when_chosen(pg, own):
    with pytest.raises(gr.Error) as excinfo:
        draw(pg, own, ["your texts"])
    assert error_message(excinfo).startswith("Your texts ")
    assert draw(pg, own, ["generated samples"])[1].endswith("run the Generate tab first.")  # not needed


@pytest.mark.parametrize("layers", ["your texts", ["bogus"], ["your texts", None], ("variations",), 3])
def test_bad_layers(pg, layers):
    with pytest.raises(gr.Error) as excinfo:
        draw(pg, "a", layers)
    assert error_message(excinfo).startswith("Overlays must be a list drawn from: your texts, generated samples")


def test_no_latent_map(pg):
    without = dataclasses.replace(pg, latent_map=None, map_problem="it was never built.")
    with pytest.raises(gr.Error, match="This checkpoint has no latent map. it was never built."):
        draw(without, "a", ["your texts"])
    figure = latent_map_tab.base_figure(without)
    assert not figure.data and "it was never built." in figure.layout.annotations[0].text


def test_mismatched_latents_become_a_clear_error(pg):
    wrong = Produced(["x"], torch.zeros(1, TINY_N + 1, D))
    with pytest.raises(gr.Error, match=r"do not fit a map of \(4, 64\) latents"):
        draw(pg, "", ["variations"], {"variations": wrong})


# --- about and header ------------------------------------------------------------------------
def test_limitations_line(pg):
    assert about_tab.limitations(pg.card) == PLAYGROUND_LIMITATIONS
    assert about_tab.limitations("# Card\n\nNo such paragraph. **Limitations.** mid-line") is None
    assert about_tab.limitations("") is None


def test_card_body_drops_front_matter_and_demotes_headings(pg):
    title, body = about_tab.card_body(pg.card)
    assert title == "Tiny Cosmos"
    assert "license: mit" not in body and "---" not in body and "Tiny Cosmos" not in body.splitlines()[0]
    assert "### Metrics" in body.splitlines()
    assert about_tab.card_body("# A\ntext\n") == ("A", "text")
    assert about_tab.card_body("# A\n## Reproduce\nrun x\n## Data\nd\n") == ("A", "### Data\nd")
    assert about_tab.card_body("no front matter\n---\nx\n---\n") == ("", "no front matter\n---\nx\n---")


def test_about_markdown(pg):
    text = about_tab.about_markdown(pg)
    assert "## What is loaded" in text and "## Model card" in text and "## Train your own" in text
    assert PLAYGROUND_LIMITATIONS in text and "### Metrics" in text and "license: mit" not in text
    rows = dict(about_tab.summary_rows(pg))
    assert rows["latent map"] == f"{MAP_POINTS} points"
    assert rows["compression"].startswith(f"L = {TINY_L} tokens -> N = {TINY_N} latents of width {D}")
    assert rows["autoencoder"] == "Perceiver resampler: 1 compressor / 1 decoder blocks"
    weights = sum(f.stat().st_size for f in (pg.folder / "autoencoder").glob("*.safetensors")) + \
        sum(f.stat().st_size for f in (pg.folder / "denoiser").glob("*.safetensors"))
    assert rows["weights on disk"] == f"{weights / 2**20:.1f} MB"          # the map's file is not counted
    bare = dataclasses.replace(pg, card="", latent_map=None, map_problem="no map here")
    text = about_tab.about_markdown(bare)
    assert "*This checkpoint has no model card (README.md).*" in text and "none (no map here)" in text


def test_header(pg):
    text = ui.header(pg)
    assert f"> {PLAYGROUND_LIMITATIONS}" in text
    assert f"{TINY_N} latent vectors" in text and f"up to {TINY_L} tokens" in text
    odd = dataclasses.replace(pg, source="<img src=x onerror=alert(1)>", card="")
    assert "<img" not in ui.header(odd) and "&lt;img" in ui.header(odd) and "> **Limitations" not in ui.header(odd)


# --- loading ---------------------------------------------------------------------------------
def test_playground_loads_its_card_and_map(pg):
    assert pg.latent_map is not None and pg.map_problem is None and len(pg.latent_map.texts) == MAP_POINTS
    assert pg.card.startswith("---\nlicense: mit") and pg.source == str(pg.folder)
    assert pg.load_seconds > 0 and pg.limits == Limits()


def _copy_map(pg, folder):
    import shutil
    shutil.copytree(pg.folder / "latent_map", folder / "latent_map")


def test_playground_without_a_map_or_card(tiny_pipeline, tmp_path):
    from app import load_playground
    tiny_pipeline.save_pretrained(tmp_path)
    bare = load_playground(tmp_path)
    assert bare.latent_map is None and bare.card == ""
    assert "has no latent map" in bare.map_problem and "python -m train.latent_map" in bare.map_problem


def test_playground_refuses_a_map_of_other_weights(pg, tiny_pipeline, tmp_path):
    from app import load_playground
    with torch.no_grad():
        next(tiny_pipeline.autoencoder.parameters()).view(-1)[0] += 1.0
    tiny_pipeline.save_pretrained(tmp_path)
    _copy_map(pg, tmp_path)
    other = load_playground(tmp_path)
    assert other.latent_map is None and "other autoencoder weights" in other.map_problem


def test_playground_survives_a_truncated_map(pg, tiny_pipeline, tmp_path):
    from app import load_playground
    tiny_pipeline.save_pretrained(tmp_path)
    _copy_map(pg, tmp_path)
    path = tmp_path / "latent_map" / "map.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    broken = load_playground(tmp_path)
    assert broken.latent_map is None and "cannot read the latent map" in broken.map_problem


# --- the whole app ---------------------------------------------------------------------------
def test_build_demo_exposes_the_api(pg):
    demo = build_demo(pg)
    assert isinstance(demo, gr.Blocks)
    api_names = {fn.api_name for fn in demo.fns.values()}
    assert {"generate", "trajectory", "trajectory_step", "interpolate", "latent_map", "vary",
            "random_seed"} <= api_names
    assert demo._queue.max_size == ui.QUEUE_SIZE


def test_steps_and_sampler_controls_start_at_the_checkpoints_defaults(pg):
    """Every sampling tab opens on the loaded checkpoint's sampler and steps (model_index.json, set from
    bench.steps), capped by the app's step limit."""
    default = pg.pipe.sampling
    try:
        pg.pipe.sampling = dataclasses.replace(default, sampler="dpm2m", steps=7)
        demo = build_demo(pg)
        steps = [b for b in demo.blocks.values() if isinstance(b, gr.Slider) and b.label.startswith("Steps")]
        samplers = [b for b in demo.blocks.values() if isinstance(b, gr.Radio) and b.label == "Sampler"]
        assert len(steps) == len(samplers) == 3     # generate, trajectory, vary (infill needs chunk latents)
        assert {b.value for b in steps} == {7} and {b.value for b in samplers} == {"dpm2m"}
        pg.pipe.sampling = dataclasses.replace(default, steps=10_000)
        assert {b.value for b in build_demo(pg).blocks.values()
                if isinstance(b, gr.Slider) and b.label.startswith("Steps")} == {pg.limits.max_steps}
    finally:
        pg.pipe.sampling = default
