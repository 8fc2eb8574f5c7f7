"""Prompt-conditioned Cosmos (issue 7): the denoiser's source path and null source, classifier-free
guidance, the pipeline's prompt arguments, checkpoints, and conditional training end to end on a
tiny made-up story set (no TinyStories text here)."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from safetensors.torch import load_file

from cosmos import (CheckpointError, CosmosDenoiser, CosmosPipeline, SamplingConfig, TanDSchedule,
                    TextTruncatedWarning)
from cosmos.card import ModelCard, read_metrics_log
from cosmos.checkpoint import save_component
from cosmos.config import ConfigError, DenoiserConfig
from cosmos.sampling import guided, sample_ddim
from train.autoencoder import train_autoencoder
from train.config import PairDataConfig, PairSource, load_config
from cosmos.windows import split_after_sentences
from train.data import DataError, load_pair_texts, load_pairs
from train.diffusion import denoising_loss, train_diffusion
from train.export import CARD_PROMPTS, export
from train.latent_stats import compute_latent_stats

from conftest import TINY_GUIDANCE, TINY_N, TINY_PROMPT_LEN, make_tiny_conditional_pipeline, tiny_denoiser_config
from test_train import _overrides, write_story_splits

D = 64          # latent width of the tiny pipelines (= the tiny encoder's width)
SRC = 48        # source width of the stand-alone denoisers below
PROMPT_LEN = TINY_PROMPT_LEN  # source_max_length of the tiny conditional pipeline


def _denoiser(**overrides) -> CosmosDenoiser:
    torch.manual_seed(0)
    values = dict(latent_dim=D, num_latents=TINY_N, source_dim=SRC, source_layers=1)
    values.update(overrides)
    return CosmosDenoiser(tiny_denoiser_config(**values)).eval()


def _inputs(B: int = 3, S: int = 5, seed: int = 0):
    """z_t (B, N, D), t (B,), self_cond (B, N, D), source (B, S, SRC), mask (B, S) with padding."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, S, dtype=torch.bool)
    mask[1, 2:] = False
    return (torch.randn(B, TINY_N, D, generator=g), torch.rand(B, generator=g), torch.randn(B, TINY_N, D, generator=g),
            torch.randn(B, S, SRC, generator=g), mask)


@pytest.fixture
def cond_pipeline(tiny_encoder, tiny_encoder_dir) -> CosmosPipeline:
    """A tiny untrained prompt-conditioned pipeline (L=16, N=4, prompts of <= 8 tokens, 4 steps, guidance 2)."""
    return make_tiny_conditional_pipeline(tiny_encoder, tiny_encoder_dir)


# --- denoiser -------------------------------------------------------------------------------------
def test_conditional_denoiser_shapes_and_use_of_the_source():
    den = _denoiser()
    z, t, sc, src, mask = _inputs()
    with torch.no_grad():
        x0 = den(z, t, sc, src, mask)
        states = den.encode_source(src, mask)
        other = den(z, t, sc, src.flip(0), mask.flip(0))
        padded = src.clone()
        padded[1, 2:] = 100.0                      # values under the mask must not matter
        x0_padded = den(z, t, sc, padded, mask)
    assert x0.shape == (3, TINY_N, D)
    assert states.states.shape == (3, 5, D) and states.mask.shape == (3, 5)
    assert not torch.allclose(x0, other)           # the source is read
    assert torch.allclose(x0, x0_padded, atol=1e-5)
    assert torch.allclose(den(z, t, sc, source_states=states), x0, atol=1e-6)


def test_null_source_is_the_source_none_branch():
    den = _denoiser()
    z, t, sc, src, mask = _inputs()
    dropped = mask.clone()
    dropped[0] = False                              # row 0: no prompt -> the null source
    with torch.no_grad():
        none = den(z, t, sc)
        all_dropped = den(z, t, sc, src, torch.zeros_like(mask))
        mixed = den(z, t, sc, src, dropped)
        conditional = den(z, t, sc, src, mask)
    assert torch.allclose(none, all_dropped, atol=1e-5)
    assert torch.allclose(mixed[0], none[0], atol=1e-5)
    assert torch.allclose(mixed[1:], conditional[1:], atol=1e-5)
    assert not torch.allclose(none, conditional)


def test_unconditional_denoiser_is_unchanged_and_refuses_a_source():
    den = CosmosDenoiser(tiny_denoiser_config(latent_dim=D, num_latents=TINY_N))
    assert den.source_encoder is None and all(b.cross_attn is None for b in den.blocks)
    assert not any("source" in k or "cross" in k for k in den.state_dict())
    assert "source_dim" not in den.config  # config.json as before prompt conditioning existed
    z, t, _, src, mask = _inputs()
    with pytest.raises(ValueError, match="unconditional"):
        den(z, t, None, src[..., :SRC], mask)


def test_denoiser_validates_the_source():
    den = _denoiser()
    z, t, sc, src, mask = _inputs()
    with pytest.raises(ValueError, match=rf"source must have shape \(B, S, {SRC}\)"):
        den(z, t, sc, src[..., :10], mask)
    with pytest.raises(ValueError, match="source_mask must have shape"):
        den(z, t, sc, src, mask[:, :2])
    with pytest.raises(ValueError, match="rows"):
        den(z, t, sc, src[:2], mask[:2])


@pytest.mark.parametrize("values, needle", [
    (dict(source_dim=0), "source_dim must be a positive integer"),
    (dict(source_dim=True), "source_dim must be a positive integer"),
    (dict(source_layers=-1), "source_layers must be an integer >= 0"),
    (dict(source_max_length=2), "source_max_length must be >= 3"),
])
def test_denoiser_config_validates_source_fields(values, needle):
    with pytest.raises(ConfigError, match=needle):
        DenoiserConfig(**values)


@pytest.mark.parametrize("value", [-0.5, float("nan"), float("inf"), "1", True, None])
def test_sampling_config_validates_guidance_scale(value):
    with pytest.raises(ConfigError, match="guidance_scale must be a finite number >= 0"):
        SamplingConfig(guidance_scale=value)


# --- classifier-free guidance ----------------------------------------------------------------------
class _CountingDenoiser:
    """Wraps a denoiser; records the batch size of every forward."""

    def __init__(self, den):
        self.den, self.batches = den, []

    def encode_source(self, *args, **kwargs):
        return self.den.encode_source(*args, **kwargs)

    def __call__(self, z_t, t, self_cond=None, **kwargs):
        self.batches.append(z_t.shape[0])
        return self.den(z_t, t, self_cond, **kwargs)


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_guidance_matches_two_separate_forwards_in_one_batched_call(scale):
    den = _denoiser()
    z, t, sc, src, mask = _inputs()
    counting = _CountingDenoiser(den)
    with torch.no_grad():
        x0 = guided(counting, src, mask, scale)(z, t, sc)
        cond, uncond = den(z, t, sc, src, mask), den(z, t, sc)
    assert counting.batches == [6]                 # conditional and null rows in one forward
    assert torch.allclose(x0, cond + scale * (cond - uncond), atol=1e-5)


def test_guidance_zero_is_one_plain_conditional_forward():
    den = _denoiser()
    z, t, sc, src, mask = _inputs()
    counting = _CountingDenoiser(den)
    with torch.no_grad():
        x0 = guided(counting, src, mask, 0)(z, t, sc)
        assert counting.batches == [3]
        assert torch.allclose(x0, den(z, t, sc, src, mask), atol=1e-6)
        steps = list(sample_ddim(guided(den, src, mask, 2.0), TanDSchedule(), z, 3))  # samplers take it as is
    assert len(steps) == 3 and steps[-1].z_t.shape == z.shape


@pytest.mark.parametrize("scale", [-1, float("nan"), float("inf"), "2", True])
def test_guided_rejects_bad_scales(scale):
    _, _, _, src, mask = _inputs()
    with pytest.raises(ValueError, match="guidance_scale must be a finite number >= 0"):
        guided(_denoiser(), src, mask, scale)


# --- training loss ---------------------------------------------------------------------------------
def test_source_dropout_in_the_loss():
    den = _denoiser()
    z, _, _, src, mask = _inputs()
    t = torch.tensor([0.2, 0.5, 0.8])

    def loss(**kwargs):
        with torch.no_grad():
            return denoising_loss(den, TanDSchedule(), z, 0.0, generator=torch.Generator().manual_seed(1), t=t,
                                  **kwargs).item()

    unconditional = loss()
    assert loss(source=src, source_mask=mask, source_drop_prob=1.0) == pytest.approx(unconditional, abs=1e-6)
    assert loss(source=src, source_mask=mask, source_drop_prob=0.0) != pytest.approx(unconditional, abs=1e-4)

    seen = []                                      # the share of rows dropped follows source_drop_prob

    def spy(z_t, t, self_cond, source, source_mask):
        seen.append(source_mask)
        return torch.zeros_like(z_t)

    B = 4000
    denoising_loss(spy, TanDSchedule(), torch.zeros(B, TINY_N, 2), 1.0, generator=torch.Generator().manual_seed(0),
                   source=torch.zeros(B, 3, SRC), source_mask=torch.ones(B, 3, dtype=torch.bool), source_drop_prob=0.3)
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])  # self-conditioning pass sees the same drops
    dropped = ~seen[0].any(1)
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.03)
    assert seen[0][~dropped].all()


# --- pipeline --------------------------------------------------------------------------------------
def test_prompted_generation_counts_and_determinism(cond_pipeline):
    pipe = cond_pipeline
    assert pipe.supports_prompts
    one = pipe.generate(prompt="the cat sat on the mat", num=3, seed=5)
    assert len(one.texts) == 3 and one.latents.shape == (3, TINY_N, D)
    again = pipe.generate(prompt="the cat sat on the mat", num=3, seed=5)
    assert torch.equal(one.latents, again.latents) and one.texts == again.texts
    listed = pipe.generate(prompt=["the cat sat on the mat", "a dog ran in the park"], seed=5)
    assert len(listed.texts) == 2
    assert pipe.generate(prompt="x y", seed=5).latents.shape == (1, TINY_N, D)  # num defaults to 1


def test_prompts_change_samples_with_the_same_seed(cond_pipeline):
    pipe = cond_pipeline
    a = pipe.generate(prompt="the cat sat on the mat", seed=2).latents
    b = pipe.generate(prompt="a dog ran in the park", seed=2).latents
    plain = pipe.generate(seed=2).latents          # no prompt: the null source
    assert not torch.allclose(a, b) and not torch.allclose(a, plain)
    # one batch of two prompts = the two prompts' rows (same noise draws, rows are independent)
    both = pipe.generate(prompt=["the cat sat on the mat", "the cat sat on the mat"], seed=2).latents
    assert torch.allclose(both, pipe.generate(prompt="the cat sat on the mat", num=2, seed=2).latents, atol=1e-6)


def test_guidance_scale_default_and_effect(cond_pipeline):
    pipe = cond_pipeline
    default = pipe.generate(prompt="the sun was hot", seed=1).latents
    assert torch.equal(default, pipe.generate(prompt="the sun was hot", seed=1, guidance_scale=TINY_GUIDANCE).latents)
    assert not torch.allclose(default, pipe.generate(prompt="the sun was hot", seed=1, guidance_scale=0).latents)


def test_prompted_trajectory_ends_on_generate(cond_pipeline):
    pipe = cond_pipeline
    steps = list(pipe.trajectory(prompt=["the cat", "a dog"], steps=3, seed=4, guidance_scale=1.5))
    out = pipe.generate(prompt=["the cat", "a dog"], steps=3, seed=4, guidance_scale=1.5)
    assert [s.i for s in steps] == [0, 1, 2] and steps[-1].sample_texts == out.texts
    assert torch.equal(steps[-1].sample_latents, out.latents)


def test_generation_is_chunked_with_prompts(cond_pipeline):
    prompts = [f"prompt number {i}" for i in range(6)]  # batch_size 4 -> chunks of 4 and 2
    calls = []
    out = cond_pipeline.generate(prompt=prompts, steps=2, seed=0, progress=lambda done, total: calls.append(total))
    assert len(out.texts) == 6 and calls == [4] * 4


def test_long_prompts_are_cut_with_a_warning(cond_pipeline):
    with pytest.warns(TextTruncatedWarning, match=f"truncated to {PROMPT_LEN}"):
        features, mask = cond_pipeline.encode_prompts(["short", "word " * 50])
    assert features.shape == (2, PROMPT_LEN, D) and mask.shape == (2, PROMPT_LEN)
    assert mask[1].all() and mask[0].sum() == 3   # [CLS] short [SEP]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TextTruncatedWarning)
        with pytest.raises(TextTruncatedWarning):
            cond_pipeline.generate(prompt="word " * 50, steps=1)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(prompt=""), "prompt must not be empty"), (dict(prompt="   \n"), "prompt must not be empty"),
    (dict(prompt=["fine", " "]), r"prompt must not be empty or blank \(prompt 1"),
    (dict(prompt=[]), "prompt is an empty list"), (dict(prompt=42), "prompt must be a string"),
    (dict(prompt=["a", 3]), "prompt must be a string"),
    (dict(prompt=["a", "b"], num=3), r"num \(3\) must equal the number of prompts \(2\)"),
    (dict(prompt="a", num=0), "num must be"),
    (dict(prompt="a", guidance_scale=-1), "guidance_scale must be a finite number >= 0"),
    (dict(prompt="a", guidance_scale=float("nan")), "guidance_scale must be"),
    (dict(prompt="a", guidance_scale="3"), "guidance_scale must be"),
    (dict(guidance_scale=2.0), "guidance_scale applies to prompted generation only"),
])
def test_bad_prompt_arguments_are_named(cond_pipeline, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        cond_pipeline.generate(steps=1, **kwargs)


def test_trajectory_validates_prompts(cond_pipeline):
    with pytest.raises(ValueError, match="at most 4 prompts"):
        next(iter(cond_pipeline.trajectory(prompt=[f"p{i}" for i in range(5)])))
    with pytest.raises(ValueError, match="prompt must not be empty"):
        next(iter(cond_pipeline.trajectory(prompt=" ")))


def test_unconditional_pipeline_refuses_prompts(tiny_pipeline):
    assert not tiny_pipeline.supports_prompts
    with pytest.raises(ValueError, match="prompt: this checkpoint is unconditional"):
        tiny_pipeline.generate(prompt="a story")
    with pytest.raises(ValueError, match="prompt: this checkpoint is unconditional"):
        next(iter(tiny_pipeline.trajectory(prompt="a story")))
    with pytest.raises(ValueError, match="guidance_scale applies to prompted generation only"):
        tiny_pipeline.generate(guidance_scale=1.0)


def test_interpolate_and_vary_work_on_a_conditional_pipeline(cond_pipeline):
    out = cond_pipeline.interpolate("the cat sat", "a dog ran", k=3, method="noise", steps=2)
    assert len(out.texts) == 3 and torch.isfinite(out.latents).all()
    varied = cond_pipeline.vary("the cat sat", strength=0.5, num=2, steps=2, seed=0)
    assert len(varied.texts) == 2


# --- checkpoints -----------------------------------------------------------------------------------
def test_conditional_round_trip(cond_pipeline, tiny_encoder, tmp_path):
    pipe = cond_pipeline
    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p/model_index.json").read_text())
    assert index["sampling"]["guidance_scale"] == TINY_GUIDANCE
    config = json.loads((tmp_path / "p/denoiser/config.json").read_text())
    assert (config["source_dim"], config["source_max_length"]) == (D, PROMPT_LEN)
    loaded = CosmosPipeline.from_pretrained(tmp_path / "p", encoder=tiny_encoder)
    assert loaded.supports_prompts and loaded.denoiser.cfg == pipe.denoiser.cfg and loaded.sampling == pipe.sampling
    sa, sb = pipe.denoiser.state_dict(), loaded.denoiser.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    a = pipe.generate(prompt=["the cat", "a dog"], seed=3)
    b = loaded.generate(prompt=["the cat", "a dog"], seed=3)
    assert a.texts == b.texts and torch.equal(a.latents, b.latents)


def test_unconditional_checkpoints_keep_their_files(tiny_pipeline, tiny_encoder, tmp_path):
    """No new field in an unconditional checkpoint's JSON, so loaders from before prompts read it."""
    tiny_pipeline.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p/model_index.json").read_text())
    config = json.loads((tmp_path / "p/denoiser/config.json").read_text())
    assert "guidance_scale" not in index["sampling"]
    assert not {"source_dim", "source_layers", "source_max_length"} & set(config)
    loaded = CosmosPipeline.from_pretrained(tmp_path / "p", encoder=tiny_encoder)
    assert not loaded.supports_prompts
    assert torch.equal(loaded.generate(2, seed=1).latents, tiny_pipeline.generate(2, seed=1).latents)


def test_loader_checks_the_source_width_against_the_encoder(cond_pipeline, tiny_encoder, tmp_path):
    cond_pipeline.save_pretrained(tmp_path / "p")
    other = CosmosDenoiser(tiny_denoiser_config(latent_dim=D, num_latents=TINY_N, source_dim=SRC))
    save_component(other, tmp_path / "p/denoiser")
    with pytest.raises(CheckpointError, match=f"prompt features of width {SRC}.*width {D}.*re-export"):
        CosmosPipeline.from_pretrained(tmp_path / "p", encoder=tiny_encoder)


# --- pair data ---------------------------------------------------------------------------------------
def test_sentence_splitting():
    text = '"Hi!" said Tom. Mr. Brown waved.\n"Come in!" They ate 3 cakes. The end'
    assert split_after_sentences(text, 1) == ('"Hi!" said Tom.', 'Mr. Brown waved.\n"Come in!" They ate 3 cakes. The end')
    assert split_after_sentences(text, 2)[0] == '"Hi!" said Tom. Mr. Brown waved.'
    assert split_after_sentences(text, 3)[1] == "They ate 3 cakes. The end"
    assert split_after_sentences("Only one.", 1) == ("Only one.", "")


def test_pair_sources_from_columns(tmp_path, tiny_encoder):
    path = tmp_path / "qa.jsonl"
    rows = [{"q": f"question {i}?", "a": f"answer number {i}"} for i in range(5)] + [{"q": "", "a": "skipped"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = PairSource(path="json", data_files={"train": str(path)}, source_column="q", target_column="a",
                        max_pairs=4)
    assert load_pair_texts(source, "train") == [(f"question {i}?", f"answer number {i}") for i in range(4)]
    data = PairDataConfig(sources=[source])
    src_ids, tgt_ids = load_pairs(data, "train", tiny_encoder, 16, 6, tmp_path / "cache")
    assert src_ids.shape == (4, 6) and tgt_ids.shape == (4, 16)
    assert list((tmp_path / "cache").glob("pairs-train-*.safetensors"))  # cached
    bad = PairSource(path="json", data_files={"train": str(path)}, source_column="q", target_column="answer")
    with pytest.raises(DataError, match="no column 'answer'"):
        load_pair_texts(bad, "train")


@pytest.mark.parametrize("values, needle", [
    (dict(), "either source_column and target_column, or split_sentences"),
    (dict(split_sentences=1, source_column="a", target_column="b"), "not both"),
    (dict(source_column="a"), "go together"),
    (dict(split_sentences=0), "split_sentences must be a positive integer"),
    (dict(split_sentences=1, max_pairs=0), "max_pairs must be a positive integer"),
])
def test_pair_source_validation(values, needle):
    with pytest.raises(ConfigError, match=needle):
        PairSource(path="json", **values)


# --- training end to end ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def story_files(tmp_path_factory) -> dict[str, str]:
    return write_story_splits(tmp_path_factory.mktemp("stories"), seed=10)


def test_conditional_training_end_to_end(tmp_path, story_files, tiny_encoder_dir):
    """An unconditional run's autoencoder, reused by a story-continuation run (first sentence -> rest)."""
    base = _overrides(tmp_path / "ae-run", story_files, tiny_encoder_dir)
    train_autoencoder(load_config("tiny", base))

    pairs = json.dumps([{"path": "json", "text_column": "text", "split_sentences": 1, "data_files": story_files}])
    cfg = load_config("tiny", _overrides(tmp_path / "story-run", story_files, tiny_encoder_dir, **{
        "diffusion_stage.pairs.sources": pairs, "diffusion_stage.autoencoder_from": tmp_path / "ae-run/autoencoder/pipeline",
        "denoiser.source_max_length": 16, "sampling.guidance_scale": 1.5}))
    assert cfg.conditional
    with pytest.raises(ConfigError, match="reuses the autoencoder"):
        train_autoencoder(cfg)
    compute_latent_stats(cfg)
    latents = load_file(str(tmp_path / "story-run/latents/train.safetensors"))
    assert latents["source_ids"].shape == (40, 16) and latents["source_features"].shape == (40, 16, D)
    assert latents["latents"].shape == (40, TINY_N, D)
    train_diffusion(cfg)
    evals = [json.loads(line) for line in (tmp_path / "story-run/diffusion/metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert evals and all(s["prompt"].startswith("Once upon a time") for s in evals[-1]["samples"])
    assert math.isfinite(evals[-1]["ema_val_loss"])

    out = export(cfg, tmp_path / "exported", torch.float16, max_windows=32, card=True)
    card = (out / "README.md").read_text()
    assert "Prompted samples" in card and "first 1 sentence(s)" in card
    for seed, prompt in enumerate(CARD_PROMPTS):     # the card's prompts are ours, never corpus text
        assert f"| {seed} | {prompt} |" in card
    model_card = ModelCard.load(out)
    assert [s.prompt for s in model_card.samples] == list(CARD_PROMPTS) and model_card.guidance_scale == 1.5
    assert model_card.stages[1].data[0].note == "source = first 1 sentence(s), target = the rest"
    reused = read_metrics_log(tmp_path / "ae-run/autoencoder/metrics.jsonl")   # the reused autoencoder's training
    assert [p.step for p in model_card.stages[0].curve] == [r["step"] for r in reused if r.get("event") == "eval"] != []
    assert card == model_card.to_markdown()
    # Reused from an exported folder (here the same one, exported over): its card has the autoencoder's training.
    again = load_config("tiny", _overrides(tmp_path / "story-run", story_files, tiny_encoder_dir, **{
        "diffusion_stage.pairs.sources": pairs, "diffusion_stage.autoencoder_from": out,
        "denoiser.source_max_length": 16, "sampling.guidance_scale": 1.5}))
    export(again, out, torch.float16, max_windows=32, card=True)
    assert ModelCard.load(out).stages[0] == model_card.stages[0]
    assert f"reused from {out.as_posix()}" in (out / "README.md").read_text()
    pipe = CosmosPipeline.from_pretrained(out)
    assert pipe.supports_prompts and pipe.sampling.guidance_scale == 1.5 and pipe.denoiser.cfg.source_dim == D
    first = pipe.generate(prompt="Once upon a time the cat ran.", num=2, steps=3, seed=0)
    assert len(first.texts) == 2 and all(isinstance(t, str) for t in first.texts)
    assert first.texts == pipe.generate(prompt="Once upon a time the cat ran.", num=2, steps=3, seed=0).texts


def test_source_dim_without_pairs_is_refused():
    with pytest.raises(ConfigError, match="source_dim is set but diffusion_stage.pairs is not"):
        load_config("tiny", ["denoiser.source_dim=64"])


def test_story_cpu_preset():
    cfg = load_config("story-cpu")
    assert cfg.conditional and cfg.preset == "story-cpu" and cfg.run_dir == "runs/story-cpu"
    assert str(cfg.autoencoder_dir) == "runs/cpu-small-v1/autoencoder/pipeline"
    assert cfg.autoencoder.latent_dim == load_config("cpu-small-v1").autoencoder.latent_dim   # the shipped AE's width
    assert cfg.diffusion_stage.pairs.sources[0].split_sentences == 1
    assert cfg.diffusion_stage.optim.steps == 1500 and cfg.denoiser.num_layers == load_config("cpu-small-v1").denoiser.num_layers
