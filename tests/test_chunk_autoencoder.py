"""The chunk-local compressor (AutoencoderConfig(compressor_type="chunk")): shapes, locality (latent i
reads and writes only tokens [i r, (i + 1) r)), overfitting 8 sentences, bit-exact save / load through a
pipeline folder, the CE-on-a-share-of-positions option, the linear-probe head, and bad configs named."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from cosmos import ConfigError, CosmosAutoencoder, CosmosPipeline, SamplingConfig
from train.autoencoder import fit_probe_head

from conftest import TINY_L, TINY_N, tiny_autoencoder_config, tiny_denoiser_config
from test_modules import SENTENCES, overfit_accuracy

R = TINY_L // TINY_N  # tokens per latent


def chunk_config(encoder_dir: str, **overrides):
    values = dict(compressor_type="chunk", chunk_hidden=96, decoder_layers=0)
    values.update(overrides)
    return tiny_autoencoder_config(encoder_dir, **values)


def chunk_autoencoder(encoder, encoder_dir, **overrides) -> CosmosAutoencoder:
    torch.manual_seed(0)
    return CosmosAutoencoder.for_encoder(encoder, chunk_config(encoder_dir, **overrides)).eval()


@pytest.mark.parametrize("context_blocks", [0, 1])
@pytest.mark.parametrize("latent_dim", [None, 16, 128])  # 128: wider than D = 64 (at most r x D)
def test_shapes(tiny_encoder, tiny_encoder_dir, context_blocks, latent_dim):
    ae = chunk_autoencoder(tiny_encoder, tiny_encoder_dir, decoder_layers=context_blocks, latent_dim=latent_dim)
    batch = tiny_encoder.tokenize(["a cat", "a much longer sentence about a dog"], TINY_L)
    feats = tiny_encoder(batch.input_ids, batch.attention_mask)
    z = ae.encode(feats, batch.attention_mask)
    assert z.shape == (2, TINY_N, latent_dim or 64)
    assert ae.decode_hidden(z).shape == (2, TINY_L, 64)
    assert ae.decode(z).shape == (2, TINY_L, tiny_encoder.vocab_size)
    assert len(ae.decoder.blocks) == context_blocks
    ae.train()
    out = ae(feats, batch.attention_mask, batch.input_ids, generator=torch.Generator().manual_seed(0))
    assert math.isfinite(out.loss.item()) and out.loss.item() == pytest.approx((out.ce + out.mse).item(), rel=1e-5)


def test_architecture_line_names_the_compressor(tiny_encoder_dir):
    assert chunk_config(tiny_encoder_dir, decoder_layers=1).architecture() == (
        "chunk-local: latent i is an MLP (hidden 96) of tokens [4i, 4i+4), mirror decoder + 1 context block(s)")
    assert tiny_autoencoder_config(tiny_encoder_dir, locality_bias=2.0).architecture() == (
        "Perceiver resampler: 1 compressor / 1 decoder blocks, locality bias 2")


def test_each_latent_reads_and_writes_only_its_own_chunk(tiny_encoder, tiny_encoder_dir):
    ae = chunk_autoencoder(tiny_encoder, tiny_encoder_dir)
    feats, mask = torch.randn(1, TINY_L, 64), torch.ones(1, TINY_L, dtype=torch.bool)
    z = ae.encode(feats, mask)
    changed = feats.clone()
    changed[:, R:2 * R] += 1.0                                       # tokens of chunk 1 only
    moved = (ae.encode(changed, mask) - z).abs().amax(-1)[0]         # (N,)
    assert moved[1] > 0 and torch.all(moved[torch.arange(TINY_N) != 1] == 0)
    hidden = ae.decode_hidden(z)
    z2 = z.clone()
    z2[:, 2] += 1.0                                                  # latent 2 only
    diff = (ae.decode_hidden(z2) - hidden).abs().amax(-1)[0]         # (L,)
    inside = torch.zeros(TINY_L, dtype=torch.bool)
    inside[2 * R:3 * R] = True
    assert torch.all(diff[inside] > 0) and torch.all(diff[~inside] == 0)


def test_pad_and_dropped_tokens_are_zeroed_before_the_chunk_mlp(tiny_encoder, tiny_encoder_dir):
    ae = chunk_autoencoder(tiny_encoder, tiny_encoder_dir)
    feats = torch.randn(1, TINY_L, 64)
    mask = torch.ones(1, TINY_L, dtype=torch.bool)
    mask[:, -3:] = False                                             # pad at the end
    other = feats.clone()
    other[:, -3:] = 123.0                                            # whatever sits under the pad
    assert torch.equal(ae.encode(feats, mask), ae.encode(other, mask))


def test_overfits_eight_sentences(tiny_encoder, tiny_encoder_dir):
    """Token accuracy 1.0 on 8 sentences within a CPU minute (no augmentation), as the Perceiver's test."""
    assert overfit_accuracy(tiny_encoder, functools.partial(chunk_config, tiny_encoder_dir)) == 1.0


def test_pipeline_round_trip_is_bit_exact(tiny_encoder, tiny_encoder_dir, tmp_path):
    torch.manual_seed(0)
    pipe = CosmosPipeline.build(chunk_config(tiny_encoder_dir, decoder_layers=1), tiny_denoiser_config(),
                                sampling=SamplingConfig(steps=3, batch_size=4), encoder=tiny_encoder)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = CosmosPipeline.from_pretrained(tmp_path / "pipe", encoder=tiny_encoder)
    assert loaded.autoencoder.cfg == pipe.autoencoder.cfg and loaded.autoencoder.cfg.compressor_type == "chunk"
    sa, sb = pipe.autoencoder.state_dict(), loaded.autoencoder.state_dict()
    assert sorted(sa) == sorted(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(pipe.encode(["a round trip"]), loaded.encode(["a round trip"]))
    a, b = pipe.generate(num=2, steps=3, seed=7), loaded.generate(num=2, steps=3, seed=7)
    assert a.texts == b.texts and torch.equal(a.latents, b.latents)


def test_ce_on_a_share_of_positions_in_training_only(tiny_encoder, tiny_encoder_dir):
    ae = chunk_autoencoder(tiny_encoder, tiny_encoder_dir, ce_fraction=0.25)
    batch = tiny_encoder.tokenize(SENTENCES, TINY_L)
    feats = tiny_encoder(batch.input_ids, batch.attention_mask)
    full = ae(feats, batch.attention_mask, batch.input_ids)                      # eval: every position
    ae.train()
    seen = []
    original = ae.head.forward
    ae.head.forward = lambda x: seen.append(x.shape[0]) or original(x)
    out = ae(feats, batch.attention_mask, batch.input_ids, generator=torch.Generator().manual_seed(0))
    positions = int(batch.attention_mask.sum())
    assert math.isfinite(out.loss.item()) and 0 < seen[0] < 0.5 * positions
    ae.eval()
    seen.clear()
    assert torch.equal(ae(feats, batch.attention_mask, batch.input_ids).ce, full.ce) and seen == [positions]


def test_linear_probe_head_decodes_the_features(tiny_encoder, tiny_encoder_dir):
    batch = tiny_encoder.tokenize(SENTENCES * 4, TINY_L)
    vocab = torch.unique(torch.cat([batch.input_ids.flatten(), torch.tensor([0, 100, 102])]))
    ae = chunk_autoencoder(tiny_encoder, tiny_encoder_dir, head_vocab_size=vocab.numel())
    ae.set_head_vocabulary(vocab)
    windows = torch.where(batch.attention_mask, batch.input_ids, 0)
    feats = tiny_encoder(batch.input_ids, batch.attention_mask)
    flat = feats[batch.attention_mask]
    ae.set_feature_stats(flat.mean(0), flat.std(0))
    before = ae.head.weight.clone()
    accuracy = fit_probe_head(ae, feats, windows, steps=60, batch_tokens=256)
    assert accuracy > 0.9 and not torch.equal(before, ae.head.weight)
    x = ae.normalize_features(flat)
    agree = (ae.head(x).argmax(-1) == ae.token_ids_to_head(windows[batch.attention_mask])).float().mean()
    assert agree.item() == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.parametrize("overrides, needle", [
    (dict(max_length=16, num_latents=3), r"max_length \(16\) to be a multiple of num_latents \(3\)"),
    (dict(compressor_type="lstm"), r"compressor_type must be one of \['perceiver', 'chunk'\], got 'lstm'"),
    (dict(decoder_layers=-1), r"decoder_layers must be an integer >= 0, got -1"),
    (dict(chunk_hidden=0), r"chunk_hidden must be a positive integer, got 0"),
    (dict(ce_fraction=0.0), r"ce_fraction must be a number in \(0, 1\], got 0.0"),
    (dict(ce_fraction=1.5), r"ce_fraction must be a number in \(0, 1\], got 1.5"),
    (dict(compressor_type="perceiver", decoder_layers=0), r"decoder_layers must be an integer >= 1, got 0"),
])
def test_bad_configs_are_named(tiny_encoder_dir, overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        chunk_config(tiny_encoder_dir, **overrides)


def test_latent_width_is_capped_at_the_chunk_size(tiny_encoder_dir):
    """A chunk latent may be wider than D (up to the r x D numbers it codes); a Perceiver latent may not."""
    assert chunk_config(tiny_encoder_dir, latent_dim=R * 64, hidden_size=64).latent_dim == R * 64
    with pytest.raises(ConfigError, match=f"the chunk's r x D = {R * 64}"):
        chunk_config(tiny_encoder_dir, latent_dim=R * 64 + 1, hidden_size=64)
    with pytest.raises(ConfigError, match="must not exceed the encoder width"):
        tiny_autoencoder_config(tiny_encoder_dir, latent_dim=65, hidden_size=64)
