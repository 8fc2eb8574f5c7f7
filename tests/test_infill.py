"""Issue 18: infill by chunks on chunk-local latents (``CosmosPipeline.infill`` / ``infill_trajectory``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import TINY_L, TINY_N, tiny_autoencoder_config, tiny_denoiser_config

from cosmos import CosmosPipeline, SamplingConfig
from cosmos.infill import keep_mask

TEXT = "the cat sat on the mat and then the dog came home"   # 12 words: fills the L = 16 row
R = TINY_L // TINY_N                                         # tokens per chunk


def make_chunk_pipeline(encoder, encoder_dir, **denoiser) -> CosmosPipeline:
    torch.manual_seed(0)
    ae = tiny_autoencoder_config(encoder_dir, compressor_type="chunk", chunk_hidden=64, decoder_layers=0)
    return CosmosPipeline.build(ae, tiny_denoiser_config(**denoiser), sampling=SamplingConfig(steps=4, batch_size=4),
                                encoder=encoder)


@pytest.fixture(scope="module")
def chunk_pipe(tiny_encoder, tiny_encoder_dir):
    return make_chunk_pipeline(tiny_encoder, tiny_encoder_dir)


def _row(pipe, text=TEXT):
    return pipe.tokenize([text]).input_ids[0]


def test_chunks_cut_the_row_into_the_spans_the_latents_own(chunk_pipe):
    chunks = chunk_pipe.chunks(TEXT)
    assert [(c.index, c.start, c.end) for c in chunks] == [(i, i * R, (i + 1) * R) for i in range(TINY_N)]
    row = _row(chunk_pipe).tolist()
    words = chunk_pipe.tokenizer.convert_ids_to_tokens(row[1:row.index(chunk_pipe.tokenizer.sep_token_id)])
    assert [t for c in chunks for t in c.tokens] == words                     # every word once, in order
    short = chunk_pipe.chunks("a cat")
    assert [c.in_text for c in short] == [True] + [False] * (TINY_N - 1)    # the rest is padding


@pytest.mark.parametrize("sampler", ["sde", "ddim", "dpm2m"])
@pytest.mark.parametrize("keep", [[0], [0, 1], [TINY_N - 1], [0, TINY_N - 1], [1, 2]])
def test_kept_chunks_keep_their_tokens_and_the_same_seed_gives_the_same_infill(chunk_pipe, sampler, keep):
    out = chunk_pipe.infill(TEXT, keep=keep, num=3, sampler=sampler, seed=5)
    row = _row(chunk_pipe)
    assert out.kept == keep and out.token_ids.shape == (3, TINY_L) and out.latents.shape == (3, *chunk_pipe.latent_shape)
    for i in keep:
        assert torch.equal(out.token_ids[:, i * R:(i + 1) * R], row[i * R:(i + 1) * R].expand(3, -1))
    z_text = chunk_pipe.encode([TEXT])[0]
    assert torch.allclose(out.latents[:, keep], z_text[keep].expand(3, -1, -1), atol=1e-5)  # pinned exactly
    again = chunk_pipe.infill(TEXT, keep=keep, num=3, sampler=sampler, seed=5)
    assert again.texts == out.texts and torch.equal(again.latents, out.latents)
    other = chunk_pipe.infill(TEXT, keep=keep, num=3, sampler=sampler, seed=6)
    if sampler == "sde" or len(keep) < TINY_N:
        assert not torch.equal(other.latents, out.latents)


def test_final_x0_keeps_the_kept_chunks_exact(chunk_pipe):
    default = chunk_pipe.sampling
    try:
        chunk_pipe.sampling = dataclasses.replace(default, final_x0=True)
        out = chunk_pipe.infill(TEXT, keep=[0, 1], num=2, sampler="dpm2m", seed=1)
        *_, last = chunk_pipe.infill_trajectory(TEXT, keep=[0, 1], num=2, sampler="dpm2m", seed=1)
    finally:
        chunk_pipe.sampling = default
    z_text = chunk_pipe.encode([TEXT])[0]
    assert torch.allclose(out.latents[:, [0, 1]], z_text[[0, 1]].expand(2, -1, -1), atol=1e-5)
    assert torch.equal(out.token_ids[:, :2 * R], _row(chunk_pipe)[:2 * R].expand(2, -1))
    assert last.sample_texts == out.texts


def test_all_kept_gives_the_text_back_and_none_kept_is_plain_sampling(chunk_pipe):
    everything = chunk_pipe.infill(TEXT, keep=list(range(TINY_N)), num=2, seed=0)
    assert everything.texts == chunk_pipe.ids_to_texts(_row(chunk_pipe)[None]) * 2
    nothing = chunk_pipe.infill(TEXT, keep=[], num=2, seed=0)
    assert nothing.kept == [] and len(nothing.texts) == 2 and nothing.latents.shape == (2, *chunk_pipe.latent_shape)


def test_token_spans_map_to_the_chunks_that_hold_them(chunk_pipe):
    assert keep_mask([(1, R + 1)], TINY_N, R, TINY_L).tolist() == [True, True, False, False]
    assert keep_mask([(R, 2 * R)], TINY_N, R, TINY_L).tolist() == [False, True, False, False]
    assert keep_mask([0, (2 * R, 2 * R + 1)], TINY_N, R, TINY_L).tolist() == [True, False, True, False]
    by_span = chunk_pipe.infill(TEXT, keep=[(0, R)], seed=1)
    by_index = chunk_pipe.infill(TEXT, keep=[0], seed=1)
    assert by_span.texts == by_index.texts


@pytest.mark.parametrize("keep, message", [
    ([TINY_N], "out of range"), ([-1], "out of range"), ([(0, TINY_L + 1)], "outside the text"),
    ([(3, 3)], "outside the text"), (["0"], "not a chunk index"), ([True], "not a chunk index"),
    ("0", "must be a list"), (5, "must be a list"), ([(1, 2, 3)], "not a chunk index")])
def test_bad_keep_values_are_refused_with_a_clear_message(chunk_pipe, keep, message):
    with pytest.raises(ValueError, match=message):
        chunk_pipe.infill(TEXT, keep=keep)


def test_a_span_past_the_end_of_a_short_text_is_refused(chunk_pipe):
    tokens = int(chunk_pipe.tokenize(["a cat"]).attention_mask.sum())        # [CLS] a cat [SEP]
    chunk_pipe.infill("a cat", keep=[(0, tokens)], seed=0)
    with pytest.raises(ValueError, match="outside the text"):
        chunk_pipe.infill("a cat", keep=[(0, tokens + 1)], seed=0)


@pytest.mark.parametrize("text", ["", "   ", None, 3])
def test_empty_or_non_text_is_refused(chunk_pipe, text):
    with pytest.raises(ValueError, match="non-empty string"):
        chunk_pipe.infill(text, keep=[0])


def test_a_perceiver_checkpoint_is_refused_saying_why(tiny_pipeline):
    assert not tiny_pipeline.supports_infill
    with pytest.raises(ValueError, match="Perceiver latents each attend to every token"):
        tiny_pipeline.infill(TEXT, keep=[0])
    with pytest.raises(ValueError, match="chunk-local autoencoder"):
        tiny_pipeline.chunks(TEXT)


def test_infill_trajectory_streams_the_same_result(chunk_pipe):
    out = chunk_pipe.infill(TEXT, keep=[0, 3], num=2, steps=5, seed=3)
    steps = list(chunk_pipe.infill_trajectory(TEXT, keep=[0, 3], num=2, steps=5, seed=3))
    assert [s.i for s in steps] == list(range(5)) and steps[-1].sample_texts == out.texts
    assert torch.equal(steps[-1].sample_latents, out.latents)
    row = _row(chunk_pipe)
    for step in steps:                                   # every step shows the kept chunks' own tokens
        assert torch.equal(step.token_ids[:, :R], row[:R].expand(2, -1))
        assert step.sigma > 0


def test_infill_with_and_without_a_prompt_on_a_conditional_checkpoint(tiny_encoder, tiny_encoder_dir):
    pipe = make_chunk_pipeline(tiny_encoder, tiny_encoder_dir, source_dim=tiny_encoder.hidden_size,
                               source_max_length=8)
    plain = pipe.infill(TEXT, keep=[0], num=2, seed=0)
    prompted = pipe.infill(TEXT, keep=[0], num=2, seed=0, prompt="a story about a dog", guidance_scale=1.0)
    assert len(plain.texts) == len(prompted.texts) == 2
    assert not torch.equal(plain.latents[:, 1:], prompted.latents[:, 1:])      # the prompt steers the rest
    assert torch.equal(plain.latents[:, 0], prompted.latents[:, 0])           # the kept chunk does not move


def test_progress_is_reported_per_step(chunk_pipe):
    seen = []
    chunk_pipe.infill(TEXT, keep=[0], steps=3, seed=0, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


# --- bench/infill.py: the bookkeeping, with a stand-in judge that scores a text by its length -------------
class LengthJudge:
    def perplexities(self, texts):
        return [float(len(t)) for t in texts]


def test_the_infill_benchmark_keeps_its_books(chunk_pipe):
    from bench.infill import evaluate, spliced, task_keeps

    assert task_keeps(8, 2) == {"middle": [0, 1, 6, 7], "beginning": [4, 5, 6, 7]}
    windows = [TEXT, "a dog ran to the park and saw a big red ball there", "the sun was hot so we went in"]
    swapped = spliced(chunk_pipe, windows[0], windows[1], [1])
    row, donor = _row(chunk_pipe, windows[0]), _row(chunk_pipe, windows[1])
    expected = torch.cat([row[:R], donor[R:2 * R], row[2 * R:]])
    assert swapped == chunk_pipe.ids_to_texts(expected[None])[0]
    result = evaluate(chunk_pipe, LengthJudge(), windows, variants=2, seeds=2, steps=2, context=1)
    assert result["original_gen_ppl"] == float(sorted(len(w) for w in windows)[1])
    for task in ("middle", "beginning"):
        row = result[task]
        assert row["kept_exact"]["mean"] == 1.0 and len(row["gen_ppl"]["runs"]) == 2
        assert 0.0 <= row["diversity"]["mean"] <= 1.0 and row["control_gen_ppl"] > 0
    assert result["middle"]["kept"] == [0, TINY_N - 1] and result["middle"]["rewritten"] == [1, 2]
    unjudged = evaluate(chunk_pipe, None, windows, variants=2, seeds=1, steps=2, context=1)
    assert "original_gen_ppl" not in unjudged and "gen_ppl" not in unjudged["middle"]
    assert unjudged["middle"]["kept_exact"]["mean"] == 1.0


def test_the_last_step_carries_the_final_token_ids_and_chunks_name_the_end(chunk_pipe):
    steps = list(chunk_pipe.infill_trajectory(TEXT, keep=[0], num=2, steps=3, seed=4))
    out = chunk_pipe.infill(TEXT, keep=[0], num=2, steps=3, seed=4)
    assert steps[-1].sample_token_ids is not None and torch.equal(steps[-1].sample_token_ids, out.token_ids)
    assert all(s.sample_token_ids is None for s in steps[:-1])
    assert chunk_pipe.chunk_size == R
    ends = [c.index for c in chunk_pipe.chunks("a cat") if c.ends_text]
    assert ends == [0]                                          # [CLS] a cat [SEP] all sit in chunk 0
    assert [c.ends_text for c in chunk_pipe.chunks(TEXT)].count(True) <= 1
