"""Checkpoints: bit-exact round trips (fp32, fp16, sharded, autoencoder-only) and one clear
CheckpointError per way a checkpoint folder can be broken. No network: a hub id fails offline."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cosmos import (AutoencoderConfig, CheckpointError, CosmosAutoencoder, CosmosDenoiser, CosmosPipeline,
                    DenoiserConfig, FrozenEncoder, SamplingConfig)
from cosmos.checkpoint import SHARD_INDEX, WEIGHTS_PREFIX, load_component, save_component
from cosmos.config import FORMAT_VERSION

from conftest import tiny_autoencoder_config, tiny_denoiser_config

WEIGHTS = f"{WEIGHTS_PREFIX}.safetensors"


# --- helpers -------------------------------------------------------------------------------------
def _with_stats(pipe: CosmosPipeline) -> CosmosPipeline:
    """Give the statistics buffers non-default values, so a round trip really has to carry them."""
    g = torch.Generator().manual_seed(1)
    D = pipe.autoencoder.cfg.width
    pipe.autoencoder.set_feature_stats(torch.randn(D, generator=g), torch.rand(D, generator=g) + 0.5)
    if pipe.denoiser is not None:
        shape = tuple(pipe.denoiser.latent_mean.shape)
        pipe.denoiser.set_latent_stats(torch.randn(shape, generator=g), torch.rand(shape, generator=g) + 0.5)
    return pipe


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), f"{key} differs after the round trip"


def _edit_json(path: Path, edit) -> None:
    value = json.loads(path.read_text())
    edit(value)
    path.write_text(json.dumps(value))


def _load(folder, encoder):
    return CosmosPipeline.from_pretrained(folder, encoder=encoder)


@pytest.fixture(scope="module")
def saved(tiny_encoder, tiny_encoder_dir, tmp_path_factory):
    """(pipeline, folder) of a tiny full pipeline with non-trivial stats, saved once per module."""
    torch.manual_seed(0)
    pipe = _with_stats(CosmosPipeline.build(tiny_autoencoder_config(tiny_encoder_dir), tiny_denoiser_config(),
                                            sampling=SamplingConfig(steps=4, batch_size=4), encoder=tiny_encoder))
    folder = tmp_path_factory.mktemp("saved") / "pipe"
    pipe.save_pretrained(folder)
    return pipe, folder


@pytest.fixture
def ckpt(saved, tmp_path) -> Path:
    """A fresh, writable copy of the saved pipeline folder, to break in one way per test."""
    return Path(shutil.copytree(saved[1], tmp_path / "pipe"))


# --- round trips ---------------------------------------------------------------------------------
def test_round_trip_is_bit_exact(saved, tiny_encoder):
    pipe, folder = saved
    assert (folder / "model_index.json").is_file()
    assert (folder / "autoencoder" / WEIGHTS).is_file() and (folder / "denoiser" / WEIGHTS).is_file()
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))  # no pickle written
    index = json.loads((folder / "model_index.json").read_text())
    assert index["format_version"] == FORMAT_VERSION

    loaded = _load(folder, tiny_encoder)
    _assert_same_state(pipe.autoencoder, loaded.autoencoder)
    _assert_same_state(pipe.denoiser, loaded.denoiser)
    assert loaded.autoencoder.cfg == pipe.autoencoder.cfg
    assert loaded.denoiser.cfg == pipe.denoiser.cfg
    assert loaded.sampling == pipe.sampling
    assert loaded.schedule.config == pipe.schedule.config
    assert not loaded.autoencoder.training and not loaded.denoiser.training

    a = pipe.generate(num=2, steps=3, seed=7)
    b = loaded.generate(num=2, steps=3, seed=7)
    assert a.texts == b.texts and len(a.texts) == 2
    assert torch.equal(a.latents, b.latents)
    z = pipe.encode(["a round trip", "second text"])
    assert torch.equal(z, loaded.encode(["a round trip", "second text"]))


def test_round_trip_loads_encoder_from_the_path_in_the_config(saved):
    """Without ``encoder=``, the encoder named in autoencoder/config.json is loaded."""
    pipe, folder = saved
    loaded = CosmosPipeline.from_pretrained(str(folder))
    assert loaded.encoder is not pipe.encoder
    assert loaded.encoder.hidden_size == pipe.encoder.hidden_size
    assert torch.equal(pipe.encode("same encoder"), loaded.encode("same encoder"))


def test_round_trip_keeps_a_restricted_head_vocabulary(tiny_encoder, tiny_encoder_dir, tmp_path):
    torch.manual_seed(0)
    pipe = CosmosPipeline.build(tiny_autoencoder_config(tiny_encoder_dir, head_vocab_size=50), encoder=tiny_encoder)
    ids = torch.tensor(sorted({0, 100, 101, 102, 103, *range(2000, 2045)}))
    pipe.autoencoder.set_head_vocabulary(ids)
    pipe.save_pretrained(tmp_path / "p")
    loaded = _load(tmp_path / "p", tiny_encoder)
    assert torch.equal(loaded.autoencoder.head_token_ids, ids)
    _assert_same_state(pipe.autoencoder, loaded.autoencoder)


def test_fp16_save_loads_as_fp32_equal_to_rounded_weights(saved, tiny_encoder, tmp_path):
    pipe, folder32 = saved
    pipe.save_pretrained(tmp_path / "half", dtype=torch.float16)
    # the original stays fp32 (the cast is on a copy)
    assert all(p.dtype == torch.float32 for p in pipe.autoencoder.parameters())
    raw = load_file(str(tmp_path / "half" / "autoencoder" / WEIGHTS))
    params = {name for name, _ in pipe.autoencoder.named_parameters()}
    assert {v.dtype for k, v in raw.items() if k in params} == {torch.float16}
    # buffers (normalisation statistics, [MASK] embedding, head ids) keep their precision
    assert {k for k, v in raw.items() if v.dtype == torch.float32} == {"feature_mean", "feature_std",
                                                                       "decoder.mask_embedding"}
    assert raw["head_token_ids"].dtype == torch.long
    size32 = (folder32 / "autoencoder" / WEIGHTS).stat().st_size
    assert (tmp_path / "half" / "autoencoder" / WEIGHTS).stat().st_size < 0.6 * size32

    loaded = _load(tmp_path / "half", tiny_encoder)
    for original, back in ((pipe.autoencoder, loaded.autoencoder), (pipe.denoiser, loaded.denoiser)):
        so, sb = original.state_dict(), back.state_dict()
        assert sorted(so) == sorted(sb)
        params = {name for name, _ in original.named_parameters()}
        for key, value in so.items():
            expected = value.half().float() if key in params else value
            assert sb[key].dtype == value.dtype, key
            assert torch.equal(sb[key], expected), key
    out = loaded.generate(num=2, steps=2, seed=3)
    assert len(out.texts) == 2 and torch.isfinite(out.latents).all()


def test_sharded_component_round_trip(saved, tiny_encoder, tmp_path):
    pipe, _ = saved
    folder = tmp_path / "ae"
    save_component(pipe.autoencoder, folder, max_shard_size="200KB")
    shards = sorted(folder.glob(f"{WEIGHTS_PREFIX}-*.safetensors"))
    assert len(shards) >= 2
    assert (folder / SHARD_INDEX).is_file() and not (folder / WEIGHTS).exists()
    weight_map = json.loads((folder / SHARD_INDEX).read_text())["weight_map"]
    assert set(weight_map) == set(pipe.autoencoder.state_dict())
    loaded = load_component(CosmosAutoencoder, AutoencoderConfig, folder)
    _assert_same_state(pipe.autoencoder, loaded)

    dfolder = tmp_path / "den"
    save_component(pipe.denoiser, dfolder, max_shard_size="20KB")
    assert len(list(dfolder.glob(f"{WEIGHTS_PREFIX}-*.safetensors"))) >= 2
    _assert_same_state(pipe.denoiser, load_component(CosmosDenoiser, DenoiserConfig, dfolder))


def test_pipeline_with_sharded_components_loads(saved, ckpt, tiny_encoder):
    pipe, _ = saved
    for name in ("autoencoder", "denoiser"):
        shutil.rmtree(ckpt / name)
        save_component(getattr(pipe, name), ckpt / name, max_shard_size="100KB")
    loaded = _load(ckpt, tiny_encoder)
    _assert_same_state(pipe.autoencoder, loaded.autoencoder)
    _assert_same_state(pipe.denoiser, loaded.denoiser)


def test_sharded_index_naming_a_missing_shard(saved, tmp_path):
    folder = tmp_path / "ae"
    save_component(saved[0].autoencoder, folder, max_shard_size="200KB")
    victim = sorted(folder.glob(f"{WEIGHTS_PREFIX}-*.safetensors"))[0]
    victim.unlink()
    with pytest.raises(CheckpointError, match="missing") as err:
        load_component(CosmosAutoencoder, AutoencoderConfig, folder)
    assert victim.name in str(err.value)


def test_resave_unsharded_over_sharded_folder(saved, tmp_path):
    pipe, _ = saved
    folder = tmp_path / "den"
    save_component(pipe.denoiser, folder, max_shard_size="20KB")
    save_component(pipe.denoiser, folder)  # e.g. a trainer re-saving its checkpoint with default sharding
    _assert_same_state(pipe.denoiser, load_component(CosmosDenoiser, DenoiserConfig, folder))


def test_autoencoder_only_pipeline(tiny_encoder, tiny_encoder_dir, tmp_path):
    torch.manual_seed(0)
    pipe = _with_stats(CosmosPipeline.build(tiny_autoencoder_config(tiny_encoder_dir), encoder=tiny_encoder))
    assert pipe.denoiser is None
    pipe.save_pretrained(tmp_path / "ae-only")
    assert not (tmp_path / "ae-only" / "denoiser").exists()
    index = json.loads((tmp_path / "ae-only" / "model_index.json").read_text())
    assert index["components"]["denoiser"] is None

    loaded = _load(tmp_path / "ae-only", tiny_encoder)
    assert loaded.denoiser is None
    _assert_same_state(pipe.autoencoder, loaded.autoencoder)
    z = loaded.encode(["only the autoencoder"])
    assert torch.equal(z, pipe.encode(["only the autoencoder"]))
    assert loaded.decode(z) == pipe.decode(z)
    with pytest.raises(RuntimeError, match="denoiser"):
        loaded.generate(num=1, steps=2, seed=0)
    with pytest.raises(RuntimeError, match="denoiser"):
        loaded.vary("a text", strength=0.5, num=1, steps=2, seed=0)
    with pytest.raises(RuntimeError, match="denoiser"):
        next(iter(loaded.trajectory(num=1, steps=2, seed=0)))


# --- failures: the folder and model_index.json ---------------------------------------------------
def test_missing_folder(tmp_path, tiny_encoder):
    with pytest.raises(CheckpointError, match="does not exist") as err:
        _load(tmp_path / "no-such-folder", tiny_encoder)
    assert "no-such-folder" in str(err.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        _load("no-such-relative-folder", tiny_encoder)  # not a path and not owner/name either


def test_missing_model_index(ckpt, tiny_encoder):
    (ckpt / "model_index.json").unlink()
    with pytest.raises(CheckpointError, match=r"model_index\.json is missing"):
        _load(ckpt, tiny_encoder)


def test_empty_folder_is_not_a_pipeline(tmp_path, tiny_encoder):
    with pytest.raises(CheckpointError, match="not a Cosmos pipeline folder"):
        _load(tmp_path, tiny_encoder)


def test_truncated_model_index(ckpt, tiny_encoder):
    path = ckpt / "model_index.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match="not valid JSON") as err:
        _load(ckpt, tiny_encoder)
    assert "model_index.json" in str(err.value) and "truncated" in str(err.value)


@pytest.mark.parametrize("content", ["", "{not json", "\xff\xfe garbage"], ids=["empty", "broken", "binary"])
def test_unparsable_model_index(ckpt, tiny_encoder, content):
    (ckpt / "model_index.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        _load(ckpt, tiny_encoder)


def test_model_index_not_an_object(ckpt, tiny_encoder):
    (ckpt / "model_index.json").write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match="JSON object"):
        _load(ckpt, tiny_encoder)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, "1", None])
def test_other_format_version(ckpt, tiny_encoder, version):
    _edit_json(ckpt / "model_index.json", lambda v: v.update(format_version=version))
    with pytest.raises(CheckpointError, match="format") as err:
        _load(ckpt, tiny_encoder)
    assert repr(version) in str(err.value) and str(FORMAT_VERSION) in str(err.value)


def test_missing_format_version(ckpt, tiny_encoder):
    _edit_json(ckpt / "model_index.json", lambda v: v.pop("format_version"))
    with pytest.raises(CheckpointError, match="format None"):
        _load(ckpt, tiny_encoder)


def test_unknown_field_in_model_index_sampling(ckpt, tiny_encoder):
    _edit_json(ckpt / "model_index.json", lambda v: v["sampling"].update(guidance_rescale=3.0))
    with pytest.raises(CheckpointError, match="unknown field") as err:
        _load(ckpt, tiny_encoder)
    assert "guidance_rescale" in str(err.value)


def test_bad_value_in_model_index_schedule(ckpt, tiny_encoder):
    _edit_json(ckpt / "model_index.json", lambda v: v["schedule"].update(d=-1.0))
    with pytest.raises(CheckpointError, match=r"\bd must be"):
        _load(ckpt, tiny_encoder)


@pytest.mark.parametrize("section, value", [("schedule", None), ("sampling", [1]), ("components", [])])
def test_wrongly_typed_model_index_section(ckpt, tiny_encoder, section, value):
    _edit_json(ckpt / "model_index.json", lambda v: v.update({section: value}))
    with pytest.raises(CheckpointError, match=section):
        _load(ckpt, tiny_encoder)


# --- failures: component configs -----------------------------------------------------------------
@pytest.mark.parametrize("component", ["autoencoder", "denoiser"])
def test_unknown_config_field(ckpt, tiny_encoder, component):
    _edit_json(ckpt / component / "config.json", lambda v: v.update(field_from_the_future=1))
    with pytest.raises(CheckpointError, match="unknown field") as err:
        _load(ckpt, tiny_encoder)
    message = str(err.value)
    assert "field_from_the_future" in message and "another version" in message
    assert str(ckpt / component / "config.json") in message


def test_missing_encoder_derived_field(ckpt, tiny_encoder):
    """Every config field has a default, so a "missing" field only fails where its default cannot
    work: the encoder-derived hidden_size (default None) makes the autoencoder unbuildable."""
    _edit_json(ckpt / "autoencoder" / "config.json", lambda v: v.pop("hidden_size"))
    with pytest.raises(CheckpointError, match="invalid config") as err:
        _load(ckpt, tiny_encoder)
    assert "encoder-derived" in str(err.value) and "config.json" in str(err.value)


def test_missing_field_whose_default_does_not_fit_the_weights(ckpt, tiny_encoder):
    """A dropped denoiser latent_dim falls back to its default (384), which the weights contradict."""
    _edit_json(ckpt / "denoiser" / "config.json", lambda v: v.pop("latent_dim"))
    with pytest.raises(CheckpointError, match="shape mismatch") as err:
        _load(ckpt, tiny_encoder)
    message = str(err.value)
    assert "denoiser does not match its config" in message
    assert "file (64,) vs model (384,)" in message and "more)" in message  # long lists are abridged


@pytest.mark.parametrize("component, field, value, needle", [
    ("autoencoder", "max_length", "16", "max_length must be a positive integer"),
    ("autoencoder", "num_latents", 99, "num_latents (99) must not exceed max_length"),
    ("denoiser", "num_layers", 3, "num_layers must be even"),
    ("denoiser", "head_dim", 48, "not divisible by head_dim"),
    ("denoiser", "rope_theta", "big", "rope_theta"),
])
def test_invalid_config_value(ckpt, tiny_encoder, component, field, value, needle):
    _edit_json(ckpt / component / "config.json", lambda v: v.update({field: value}))
    with pytest.raises(CheckpointError, match="invalid config") as err:
        _load(ckpt, tiny_encoder)
    assert needle in str(err.value)


@pytest.mark.parametrize("component, other", [("autoencoder", "CosmosDenoiser"), ("denoiser", "CosmosAutoencoder")])
def test_config_of_another_class(ckpt, tiny_encoder, component, other):
    _edit_json(ckpt / component / "config.json", lambda v: v.update(_class_name=other))
    with pytest.raises(CheckpointError, match=f"describes a {other}"):
        _load(ckpt, tiny_encoder)


def test_component_folders_swapped(ckpt, tiny_encoder):
    (ckpt / "autoencoder").rename(ckpt / "tmp")
    (ckpt / "denoiser").rename(ckpt / "autoencoder")
    (ckpt / "tmp").rename(ckpt / "denoiser")
    with pytest.raises(CheckpointError, match="describes a CosmosDenoiser, expected CosmosAutoencoder"):
        _load(ckpt, tiny_encoder)


def test_missing_component_folder(ckpt, tiny_encoder):
    shutil.rmtree(ckpt / "denoiser")
    with pytest.raises(CheckpointError, match="component folder .*denoiser is missing"):
        _load(ckpt, tiny_encoder)


def test_missing_component_config(ckpt, tiny_encoder):
    (ckpt / "autoencoder" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        _load(ckpt, tiny_encoder)


def test_truncated_component_config(ckpt, tiny_encoder):
    path = ckpt / "denoiser" / "config.json"
    path.write_text(path.read_text()[:40])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        _load(ckpt, tiny_encoder)


# --- failures: weights ---------------------------------------------------------------------------
def test_truncated_safetensors(ckpt, tiny_encoder):
    path = ckpt / "autoencoder" / WEIGHTS
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot be read as safetensors") as err:
        _load(ckpt, tiny_encoder)
    assert "truncated" in str(err.value) and WEIGHTS in str(err.value)


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"this is not a safetensors file at all" * 50,
                                     b"\xff" * 4096], ids=["empty", "short", "text", "ff"])
def test_garbage_safetensors(ckpt, tiny_encoder, content):
    (ckpt / "denoiser" / WEIGHTS).write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot be read as safetensors"):
        _load(ckpt, tiny_encoder)


def test_missing_weights_file(ckpt, tiny_encoder):
    (ckpt / "denoiser" / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match="has no weights"):
        _load(ckpt, tiny_encoder)


def test_missing_tensor(ckpt, tiny_encoder):
    path = ckpt / "autoencoder" / WEIGHTS
    state = load_file(str(path))
    del state["decoder.mask_gate"]
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="missing tensors: decoder.mask_gate"):
        _load(ckpt, tiny_encoder)


def test_unexpected_tensor(ckpt, tiny_encoder):
    path = ckpt / "denoiser" / WEIGHTS
    state = load_file(str(path))
    state["blocks.7.extra.weight"] = torch.zeros(3)
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="unexpected tensors: blocks.7.extra.weight"):
        _load(ckpt, tiny_encoder)


def test_wrong_shape_from_edited_config(ckpt, tiny_encoder):
    """config.json says num_latents=2, the weights were trained with 4."""
    _edit_json(ckpt / "autoencoder" / "config.json", lambda v: v.update(num_latents=2))
    with pytest.raises(CheckpointError, match="shape mismatches") as err:
        _load(ckpt, tiny_encoder)
    message = str(err.value)
    assert "compressor.queries: file (4, 64) vs model (2, 64)" in message
    assert "decoder.latent_pos" in message


def test_wrong_shape_tensor_in_file(ckpt, tiny_encoder):
    path = ckpt / "denoiser" / WEIGHTS
    state = load_file(str(path))
    state["final_norm.weight"] = torch.ones(65)
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match=r"final_norm.weight: file \(65,\) vs model \(64,\)"):
        _load(ckpt, tiny_encoder)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weight(ckpt, tiny_encoder, value):
    path = ckpt / "autoencoder" / WEIGHTS
    state = load_file(str(path))
    state["head.weight"][5, 3] = value
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="non-finite") as err:
        _load(ckpt, tiny_encoder)
    assert "head.weight" in str(err.value)


def test_non_finite_buffer(ckpt, tiny_encoder):
    path = ckpt / "denoiser" / WEIGHTS
    state = load_file(str(path))
    state["latent_std"][0, 0] = float("nan")
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="non-finite.*latent_std"):
        _load(ckpt, tiny_encoder)


class _Tripwire:
    """Unpickling this touches a file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("name", ["diffusion_pytorch_model.bin", "pytorch_model.bin", "model.pt", "model.ckpt"])
def test_only_pickle_weights(ckpt, tiny_encoder, tmp_path, name):
    marker = tmp_path / "pickle-was-loaded"
    (ckpt / "autoencoder" / WEIGHTS).unlink()
    (ckpt / "autoencoder" / name).write_bytes(pickle.dumps({"head.weight": _Tripwire(marker)}))
    with pytest.raises(CheckpointError, match="pickle") as err:
        _load(ckpt, tiny_encoder)
    assert "never loaded" in str(err.value) and "safetensors" in str(err.value)
    assert not marker.exists()


def test_pickle_next_to_safetensors_is_ignored(ckpt, tiny_encoder, tmp_path, saved):
    marker = tmp_path / "pickle-was-loaded"
    (ckpt / "denoiser" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(_Tripwire(marker)))
    loaded = _load(ckpt, tiny_encoder)
    assert not marker.exists()
    _assert_same_state(saved[0].denoiser, loaded.denoiser)


# --- failures: the encoder, the hub -------------------------------------------------------------
@pytest.fixture(scope="module")
def narrow_encoder(tiny_encoder) -> FrozenEncoder:
    """Another tiny BERT, width 32 instead of 64, with the same tokenizer."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=tiny_encoder.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    return FrozenEncoder(BertModel(config), tiny_encoder.tokenizer, "narrow-test-bert")


def test_autoencoder_for_another_encoder(saved, narrow_encoder):
    with pytest.raises(CheckpointError, match="hidden_size") as err:
        CosmosPipeline.from_pretrained(saved[1], encoder=narrow_encoder)
    message = str(err.value)
    assert "autoencoder 64 vs encoder 32" in message and "narrow-test-bert" in message
    assert "vocab_size" not in message  # only what really differs is named


def test_hub_id_without_network(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import time
    monkeypatch.chdir(tmp_path)  # so "someone/nonexistent-repo" cannot be a local folder by chance
    with pytest.raises(CheckpointError) as err:
        CosmosPipeline.from_pretrained("someone/nonexistent-repo")
    message = str(err.value)
    assert "'someone/nonexistent-repo' is not a local folder" in message
    assert "could not be fetched" in message
