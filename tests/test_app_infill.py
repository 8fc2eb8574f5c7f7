"""The Infill tab (issue 18) and the trajectory's chunk view, called directly (no server), on a tiny chunk-local
playground (L = 16, N = 4: 4 tokens per chunk, random weights, a latent map): presets tick the right chunks,
kept chunks come back verbatim in every variant, a run streams one update per step and ends on what
``pipe.infill`` returns, every field is checked with a message naming it, seeds repeat, and a Perceiver
checkpoint has no Infill tab (the About tab says why) while its trajectory view stays as it was."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import gradio as gr
import pytest
import torch

from app import Limits, about_tab, build_demo, infill_tab, inputs, latent_map_tab, trajectory_tab
from app.chunks import (KEPT, REWRITTEN, changed_chunks_text, changed_per_chunk, chunk_label, chunk_size, labelled_rows,
                        preset_keep)
from app.context import Produced
from cosmos import join_wordpieces

from conftest import PLAYGROUND_REFERENCE, PLAYGROUND_SAMPLES, TINY_L, TINY_N, TINY_PROMPT_LEN
from test_infill import TEXT, make_chunk_pipeline

R = TINY_L // TINY_N            # tokens per chunk
D = 64                          # latent width of the tiny model
SHORT = "a cat sat"             # [CLS] a cat sat | [SEP] ...: one chunk of text, three of padding
GOOD = dict(text=TEXT, keep=[0, 1], num=2, steps=3, sampler="ddim", seed=0)


@pytest.fixture(scope="module")
def pg(tmp_path_factory, tiny_encoder, tiny_encoder_dir):
    """``app.load_playground`` over a saved tiny chunk-local pipeline with a latent map."""
    from app import load_playground
    from train.latent_map import build_latent_map

    folder = tmp_path_factory.mktemp("tiny-chunk-playground")
    pipe = make_chunk_pipeline(tiny_encoder, tiny_encoder_dir)
    pipe.save_pretrained(folder)
    build_latent_map(pipe, PLAYGROUND_REFERENCE, num_samples=PLAYGROUND_SAMPLES).save(folder)
    return load_playground(folder)


@pytest.fixture(scope="module")
def conditional(tmp_path_factory, tiny_encoder, tiny_encoder_dir):
    """A tiny chunk-local prompt-conditioned playground (no map)."""
    from app import load_playground

    folder = tmp_path_factory.mktemp("tiny-chunk-conditional")
    make_chunk_pipeline(tiny_encoder, tiny_encoder_dir, source_dim=tiny_encoder.hidden_size,
                        source_max_length=TINY_PROMPT_LEN).save_pretrained(folder)
    return load_playground(folder)


def limited(pg, **limits):
    return dataclasses.replace(pg, limits=Limits(**limits))


def drain(pg, **args):
    return list(infill_tab.run_infill(pg, **{**GOOD, **args}))


def variants_of(highlighted) -> list[list[tuple[str, str | None]]]:
    """The HighlightedText's rows (one per variant), without their "variant k: " names."""
    rows, row = [], []
    for piece, label in highlighted:
        if piece == "\n":
            rows.append(row[1:])
            row = []
        else:
            row.append((piece, label))
    assert not row
    return rows


def kept_text(pg, text, keep) -> str:
    """The kept chunks' tokens as the highlighted rows spell them."""
    tokens = [t for c in pg.pipe.chunks(text) if c.index in keep for t in c.tokens]
    return "".join(join_wordpieces(tokens))


# --- presets ---------------------------------------------------------------------------------
def fake_chunks(text_chunks: int, padding: int):
    return [SimpleNamespace(index=i, tokens=["w"] if i < text_chunks else [], in_text=i < text_chunks)
            for i in range(text_chunks + padding)]


@pytest.mark.parametrize("n, padding, expected", [
    (5, 3, {"continue": [0, 1, 2], "write the beginning": [2, 3, 4, 5, 6, 7], "rewrite the middle": [0, 4, 5, 6, 7]}),
    (4, 0, {"continue": [0, 1], "write the beginning": [2, 3], "rewrite the middle": [0, 3]}),
    (2, 2, {"continue": [0], "write the beginning": [1, 2, 3], "rewrite the middle": [0, 1, 2, 3]}),
    (1, 3, {"continue": [0], "write the beginning": [1, 2, 3], "rewrite the middle": [0, 1, 2, 3]}),
])
def test_presets_keep_the_right_chunks(n, padding, expected):
    chunks = fake_chunks(n, padding)
    assert {preset: preset_keep(chunks, preset) for preset in infill_tab.PRESETS} == expected
    with pytest.raises(ValueError, match="unknown preset"):
        preset_keep(chunks, "bogus")


def test_preset_buttons_tick_the_chunks_of_the_typed_text(pg):
    chunks = pg.pipe.chunks(TEXT)
    assert [c.in_text for c in chunks] == [True] * TINY_N                    # 12 words fill the row
    expected = {"continue": [0, 1], "write the beginning": [2, 3], "rewrite the middle": [0, 3]}
    for preset, keep in expected.items():
        update = infill_tab.apply_preset(pg, preset, TEXT)
        assert update.value == keep
        assert update.choices == [(chunk_label(c), c.index) for c in chunks]
    assert chunk_label(chunks[0]) == "0 · the cat sat" and chunk_label(pg.pipe.chunks(SHORT)[1]) == "1 · (after the end)"


def test_a_preset_that_leaves_nothing_to_rewrite_says_so(pg):
    with pytest.warns(UserWarning, match="keeps every chunk of this short text"):
        assert infill_tab.apply_preset(pg, "rewrite the middle", SHORT).value == [0, 1, 2, 3]


@pytest.mark.parametrize("preset, text, message", [("bogus", TEXT, "Preset must be one of continue"),
                                                   ("continue", "  ", "Text is empty"),
                                                   ("continue", None, "Text must be text")])
def test_preset_inputs_are_checked(pg, preset, text, message):
    with pytest.raises(gr.Error, match=message):
        infill_tab.apply_preset(pg, preset, text)


def test_the_chunk_list_follows_the_text_and_keeps_the_ticks(pg):
    update = infill_tab.show_chunks(pg, SHORT, [0, 2])
    assert update.value == [0, 2] and [label for label, _ in update.choices][:2] == ["0 · a cat sat",
                                                                                     "1 · (after the end)"]
    blank = infill_tab.show_chunks(pg, "", None)
    assert blank.value == [] and blank.choices == [(f"{i} · chunk {i}", i) for i in range(TINY_N)]


# --- a run -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(pg):
    return drain(pg, keep=[0, 1], num=3, steps=4, sampler="sde", seed=5)


def test_a_run_streams_one_update_per_step(run):
    assert len(run) == 4 and all(len(update) == 4 for update in run)
    for i, (highlighted, caption, table, produced) in enumerate(run[:-1], start=1):
        assert caption.startswith(f"step **{i} / 4** · σ(t) = ") and "chunks changed: " in caption
        assert table == gr.skip() and produced == gr.skip()
        assert len(variants_of(highlighted)) == 3
    assert "chunks changed: 0, 1, 2, 3" in run[0][1]                            # all new at the first step
    assert all("chunks changed: 0" not in caption and "chunks changed: 1" not in caption   # kept: never change
               for _, caption, _, _ in run[1:-1])


def test_kept_chunks_are_verbatim_in_every_variant_while_running_and_at_the_end(pg, run):
    verbatim = kept_text(pg, TEXT, [0, 1])
    for highlighted, *_ in run:
        for row in variants_of(highlighted):
            assert "".join(piece for piece, label in row if label == KEPT) == verbatim
            labels = [label for _, label in row]
            assert labels[:labels.count(KEPT)] == [KEPT] * labels.count(KEPT)   # kept chunks first, then rewritten
            assert set(labels) <= {KEPT, REWRITTEN}
    _, _, table, _ = run[-1]
    assert all(text.startswith(pg.pipe.ids_to_texts(pg.pipe.tokenize([TEXT]).input_ids[:, :2 * R])[0])
               for _, text in table)


def test_the_run_ends_on_what_pipe_infill_returns(pg, run):
    highlighted, info, table, produced = run[-1]
    out = pg.pipe.infill(TEXT, keep=[0, 1], num=3, steps=4, sampler="sde", seed=5)
    assert table == [[f"variant {k}", text or infill_tab.EMPTY] for k, text in enumerate(out.texts, start=1)]
    assert highlighted == labelled_rows(pg.pipe, out.token_ids, [0, 1], R, ["variant 1", "variant 2",
                                                                                         "variant 3"])
    assert isinstance(produced, Produced) and produced.texts == [TEXT, *out.texts]
    assert produced.latents.shape == (4, TINY_N, D) and torch.allclose(produced.latents[1:], out.latents, atol=1e-6)
    assert torch.equal(produced.latents[0], pg.pipe.encode([TEXT])[0])
    assert info.startswith("3 variants x 4 steps (SDE, seed 5) in **")
    assert info.endswith("kept chunk(s) 0, 1 (the text's own tokens), rewrote 2, 3.")


def test_the_same_seed_gives_the_same_variants(pg, run):
    again = drain(pg, keep=[0, 1], num=3, steps=4, sampler="sde", seed=5.0)     # widgets send floats
    assert [u[0] for u in again] == [u[0] for u in run] and again[-1][2] == run[-1][2]
    other = drain(pg, keep=[0, 1], num=3, steps=4, sampler="sde", seed=6)
    assert other[-1][2] != run[-1][2]


@pytest.mark.parametrize("keep", [[], [0, 1, 2, 3], [3], ["1", 2.0, 1]])
def test_any_keep_set_works(pg, keep):
    checked = inputs.indices(keep, "Keep", TINY_N)
    out = pg.pipe.infill(TEXT, keep=checked, num=2, steps=2, sampler="ddim", seed=1)
    if len(checked) == TINY_N:
        with pytest.warns(UserWarning, match="Every chunk is kept"):
            updates = drain(pg, keep=keep, steps=2, seed=1)
    else:
        updates = drain(pg, keep=keep, steps=2, seed=1)
    assert [text for _, text in updates[-1][2]] == [t or infill_tab.EMPTY for t in out.texts]


def test_a_kept_end_before_rewritten_chunks_is_pointed_out(pg):
    with pytest.warns(UserWarning, match="Chunk 1 is kept and holds the text's end"):
        updates = drain(pg, text=SHORT, keep=[0, 1])
    assert "untick chunk 1 to let the text go on" in updates[-1][1]
    assert "Chunk" not in drain(pg, text=SHORT, keep=[0])[-1][1]


def test_a_prompt_on_a_conditional_chunk_checkpoint(conditional):
    prompt = "a story about a dog"
    updates = drain(conditional, keep=[0], prompt=prompt, guidance_scale=1.5)
    out = conditional.pipe.infill(TEXT, keep=[0], num=2, steps=3, sampler="ddim", seed=0, prompt=prompt,
                                  guidance_scale=1.5)
    highlighted, info, table, _ = updates[-1]
    assert [text for _, text in table] == [t or infill_tab.EMPTY for t in out.texts]
    assert "guidance 1.5" in info and f"Prompt: “{prompt}”." in info
    plain = drain(conditional, keep=[0], prompt="", guidance_scale=1.5)[-1][2]
    assert plain == [[r, t or infill_tab.EMPTY] for r, t in
                     zip(["variant 1", "variant 2"], conditional.pipe.infill(TEXT, keep=[0], num=2, steps=3,
                                                                            sampler="ddim", seed=0).texts)]
    boxes = [b for b in build_demo(conditional).blocks.values()
             if isinstance(b, gr.Textbox) and b.label == "Prompt (optional)"]
    assert len(boxes) == 3 and all(b.visible is not False for b in boxes)     # Generate, trajectory, Infill


# --- validation ------------------------------------------------------------------------------
BAD = [
    ("text", None, "Text must be text"), ("text", "", "Text is empty"), ("text", " \n\t\u3000", "Text is empty"),
    ("text", 5, "Text must be text"), ("text", ["a list"], "Text must be text"),
    ("keep", "0,1", "Keep must be a list of indices from 0 to 3"), ("keep", "", "Keep must be a list"),
    ("keep", None, "Keep must be a list"), ("keep", 1, "Keep must be a list"), ("keep", {"0": 1}, "Keep must be a list"),
    ("keep", [TINY_N], "Keep must list indices from 0 to 3; got 4"), ("keep", [-1], "Keep must list indices"),
    ("keep", [0.5], "Keep must list whole numbers"), ("keep", ["a"], "Keep must list whole numbers"),
    ("keep", [""], "Keep must list whole numbers"), ("keep", [True], "Keep must list whole numbers"),
    ("keep", [math.nan], "Keep must list whole numbers"), ("keep", [None], "Keep must list whole numbers"),
    ("keep", ["\u0661"], "Keep must list whole numbers"), ("keep", [[0]], "Keep must list whole numbers"),
    ("keep", [10**30], "Keep must list indices"), ("keep", list(range(TINY_N + 1)), "Keep lists 5 indices"),
    ("num", 0, "Number of variants must be between 1 and 4"), ("num", 5, "Number of variants must be between 1 and 4"),
    ("num", 2.5, "Number of variants must be a whole number"), ("num", math.nan, "Number of variants must be a finite"),
    ("num", "2", "Number of variants must be a number"), ("steps", 0, "Steps must be between 1 and 500"),
    ("steps", 501, "Steps must be between"), ("steps", math.inf, "Steps must be a finite"),
    ("sampler", "euler", "Sampler must be one of"), ("sampler", None, "Sampler must be one of"),
    ("seed", -1, "Seed must be between"), ("seed", 2**40, "Seed must be between"),
    ("prompt", "a dog", "Prompt must be empty here"), ("prompt", 42, "Prompt must be text"),
    ("guidance_scale", math.nan, "Guidance scale must be a finite"), ("guidance_scale", 99, "Guidance scale must be in"),
]


@pytest.mark.parametrize("arg, value, message", BAD, ids=[f"{a}-{v!r}"[:40] for a, v, _ in BAD])
def test_bad_inputs_are_refused_naming_the_field(pg, arg, value, message):
    with pytest.raises(gr.Error) as caught:
        drain(pg, **{arg: value})
    assert caught.value.message.startswith(message), caught.value.message
    assert "Traceback" not in caught.value.message and "Something went wrong" not in caught.value.message


def test_the_work_budget_and_the_time_limit(pg):
    with pytest.raises(gr.Error, match="2 samples x 3 steps is more than this server runs"):
        drain(limited(pg, max_sample_steps=5))
    with pytest.raises(gr.Error, match="ran past the server's 0 s limit"):
        drain(limited(pg, max_seconds=0.0, gflops=math.inf))    # predicted to fit; stopped while it runs


def test_variants_are_capped_by_the_sampling_batch(pg):
    assert infill_tab.max_variants(pg) == 4 == pg.pipe.sampling.batch_size
    assert infill_tab.max_variants(limited(pg, max_samples=2)) == 2


def test_long_text_is_cut_with_the_truncation_notice(pg):
    words = " ".join(["word"] * 30)
    with pytest.warns(UserWarning, match=f"at most {TINY_L} tokens per text"):
        drain(pg, text=words, keep=[0])


def test_index_lists(pg):
    assert inputs.indices([3, 1, 2.0, "0"], "Keep", 4) == [0, 1, 2, 3]
    assert inputs.indices([1, 1.0, "1"], "Keep", 4) == [1]
    assert inputs.indices((), "Keep", 4) == []
    with pytest.raises(gr.Error, match=r"Keep must be a list of indices \(there are none\)"):
        inputs.indices("x", "Keep", 0)


# --- a checkpoint that cannot infill ---------------------------------------------------------
def test_a_perceiver_playground_has_no_infill_tab_and_says_why(tiny_playground):
    assert not tiny_playground.pipe.supports_infill and chunk_size(tiny_playground.pipe) is None
    tabs = [b.label for b in build_demo(tiny_playground).blocks.values() if isinstance(b, gr.Tab)]
    assert "Infill" not in tabs and "Vary / edit" in tabs
    note = infill_tab.unavailable_note(tiny_playground)
    assert "Perceiver" in note and "no latent owns a span of the text" in note
    assert dict(about_tab.summary_rows(tiny_playground))["infill"] == f"no (so there is no Infill tab): {note}"
    with pytest.raises(gr.Error) as caught:
        drain(tiny_playground)
    assert caught.value.message == note
    with pytest.raises(gr.Error, match="Infill needs a chunk-local checkpoint"):
        infill_tab.apply_preset(tiny_playground, "continue", TEXT)
    assert latent_map_tab.layers_for(tiny_playground) == latent_map_tab.LAYERS
    with pytest.raises(gr.Error, match="Overlays must be a list drawn from"):
        latent_map_tab.draw_map(tiny_playground, "", [latent_map_tab.INFILL_LAYER], None, None, None, None)


def test_a_chunk_playground_has_the_tab_after_vary(pg):
    demo = build_demo(pg)
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs[tabs.index("Vary / edit") + 1] == "Infill"
    api = demo.get_api_info()["named_endpoints"]["/infill"]["parameters"]
    assert [p["parameter_name"] for p in api] == ["text", "keep", "num", "steps", "sampler", "seed", "prompt",
                                                  "guidance_scale"]
    assert dict(about_tab.summary_rows(pg))["infill"].startswith(f"yes: chunk-local latents, each owning {R} tokens")


# --- the latent map --------------------------------------------------------------------------
def test_infill_variants_go_on_the_latent_map(pg, run):
    produced = run[-1][3]
    layer = latent_map_tab.INFILL_LAYER
    assert layer in latent_map_tab.layers_for(pg)
    figure, summary = latent_map_tab.draw_map(pg, "", [layer], None, None, None, None, produced)
    assert f"placed: {layer} (4)" in summary and "Not drawn" not in summary
    (trace,) = [t for t in figure.data if t.name == layer]
    assert len(trace.x) == 4 and trace.mode == "markers"
    _, summary = latent_map_tab.draw_map(pg, "", [layer], None, None, None, None)
    assert summary.endswith(f"Not drawn: {layer}: run the Infill tab first.")


# --- the trajectory's chunk view -------------------------------------------------------------
def test_the_trajectory_names_the_chunks_that_changed(pg):
    updates = list(trajectory_tab.run_trajectory(pg, 4, "sde", 2))
    run = updates[-1][4]
    assert run.chunk_size == R and len(run.chunk_changes) == 4
    for i, counts in enumerate(run.chunk_changes):
        assert len(counts) == TINY_N and sum(counts) == run.changed[i]
        assert run.caption(i).endswith(" · " + changed_chunks_text(counts))
        assert updates[i][3].startswith(run.caption(i))
    figure = updates[-1][1]
    assert [t.name for t in figure.data] == ["chunks", "distance", "changed", "σ(t)"]
    heat = figure.data[0]
    assert [list(row) for row in heat.z] == [[float(c[k]) for c in run.chunk_changes] for k in range(TINY_N)]
    assert trajectory_tab.show_step(run, 2)[2] == run.caption(1)


def test_the_changed_chunks_follow_the_changed_tokens():
    pieces = [(1, "a"), (2, "b"), (5, "c"), (13, "d")]
    assert changed_per_chunk(pieces, [True, False, True, True], R, TINY_N) == [1, 1, 0, 1]
    assert changed_chunks_text([1, 1, 0, 1]) == "chunks changed: 0, 1, 3"
    assert changed_chunks_text([0, 0, 0, 0]) == "chunks changed: none"


def test_a_perceiver_trajectory_has_no_chunk_view(tiny_playground):
    updates = list(trajectory_tab.run_trajectory(tiny_playground, 2, "ddim", 0))
    run = updates[-1][4]
    assert run.chunk_size is None and run.chunk_changes == [] and "chunks changed" not in updates[-1][3]
    assert [t.name for t in updates[-1][1].data] == ["distance", "changed", "σ(t)"]
