"""Training: the `tiny` preset end to end on data made here, resume = uninterrupted run, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import train.autoencoder as ae_stage
import train.loop as training_loop
from cosmos import CosmosPipeline
from cosmos.card import ModelCard, read_metrics_log
from cosmos.config import ConfigError
from cosmos.windows import windows_from_texts
from train.autoencoder import train_autoencoder
from train.config import load_config
from train.data import DataError
from train.diffusion import train_diffusion
from train.defaults import set_defaults
from train.export import export
from train.latent_stats import compute_latent_stats

WORDS = "the cat dog sun tree ball red blue little big happy sad ran jumped saw found".split()


def _stories(n: int, seed: int) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    pick = lambda k: " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (k,), generator=g))  # noqa: E731
    return [f"Once upon a time {pick(6)}. Then {pick(int(torch.randint(4, 30, (1,), generator=g)))}." for _ in range(n)]


def write_story_splits(folder, seed: int = 0) -> dict[str, str]:
    """train/validation/test jsonl files of made-up stories (40 / 12 / 12) in ``folder``: {split: path}."""
    files = {}
    for i, split in enumerate(("train", "validation", "test")):
        path = folder / f"{split}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n"
                                for t in _stories(40 if split == "train" else 12, seed + i)))
        files[split] = str(path)
    return files


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, str]:
    return write_story_splits(tmp_path_factory.mktemp("data"))


def _overrides(run_dir, data_files, encoder_dir, **extra) -> list[str]:
    source = json.dumps([{"path": "json", "text_column": "text", "data_files": data_files}])
    values = {"run_dir": str(run_dir), "autoencoder.encoder": encoder_dir,
              "autoencoder_stage.data.sources": source, "diffusion_stage.data.sources": source,
              "autoencoder.head_dim": 32, "denoiser.head_dim": 32, **extra}
    return [f"{k}={v}" for k, v in values.items()]


def test_tiny_preset_end_to_end(tmp_path, data_files, tiny_encoder_dir):
    cfg = load_config("tiny", _overrides(tmp_path / "run", data_files, tiny_encoder_dir))
    train_autoencoder(cfg)
    compute_latent_stats(cfg)
    train_diffusion(cfg)
    out = export(cfg, tmp_path / "exported", torch.float16, max_windows=32, card=True)

    metrics = [json.loads(line) for line in (tmp_path / "run/autoencoder/metrics.jsonl").read_text().splitlines()]
    assert {"step", "loss", "ce", "mse", "accuracy", "lr", "tokens_per_s"} <= set(metrics[1])
    assert any(m.get("event") == "eval" and "val_accuracy" in m for m in metrics)
    latents = load_file(str(tmp_path / "run/latents/train.safetensors"))["latents"]
    stats = load_file(str(tmp_path / "run/latents/stats.safetensors"))
    assert stats["mean"].shape == latents.shape[1:] == (4, 64)
    assert torch.allclose(stats["mean"], latents.mean(0), atol=1e-5)

    pipe = CosmosPipeline.from_pretrained(out)
    assert torch.equal(pipe.denoiser.latent_mean, stats["mean"])  # statistics are exported at full precision
    texts = pipe.generate(2, steps=3, seed=0).texts
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    card = (out / "README.md").read_text()
    assert "token accuracy" in card and "| 9 |" in card  # metrics table and the 10th sample

    model_card = ModelCard.load(out)                     # card.json: the same facts as data
    assert card == model_card.to_markdown()
    for stage in model_card.stages:                      # every evaluation the stage logged, as logged
        evals = [r for r in read_metrics_log(tmp_path / "run" / stage.name / "metrics.jsonl") if r.get("event") == "eval"]
        assert evals and [(p.step, p.minutes) for p in stage.curve] == [(r["step"], r["minutes"]) for r in evals]
        assert stage.curve_values()[1] == [r[stage.curve_metric] for r in evals]
        assert stage.steps == {"autoencoder": cfg.autoencoder_stage, "diffusion": cfg.diffusion_stage}[stage.name].optim.steps
    assert [s.seed for s in model_card.samples] == list(range(10)) and not model_card.prompted
    assert model_card.samples[3].text == pipe.generate(1, seed=3).texts[0]
    assert len(model_card.reconstruction) == 1 and model_card.reconstruction[0].windows > 0

    # new sampling defaults (python -m train.defaults): the index and the card change, the weights do not
    weights = {p: p.read_bytes() for p in out.rglob("*.safetensors")}
    set_defaults(out, sampler="dpm2m", steps=3, time_grid="logsnr")
    index = json.loads((out / "model_index.json").read_text())
    assert {k: index["sampling"][k] for k in ("sampler", "steps", "time_grid")} == \
        {"sampler": "dpm2m", "steps": 3, "time_grid": "logsnr"}
    assert {p: p.read_bytes() for p in out.rglob("*.safetensors")} == weights
    reloaded, refreshed = CosmosPipeline.from_pretrained(out), ModelCard.load(out)
    assert (reloaded.sampling.sampler, reloaded.sampling.steps, reloaded.sampling.time_grid) == ("dpm2m", 3, "logsnr")
    assert refreshed.samples[3].text == reloaded.generate(1, seed=3).texts[0]
    assert "dpm2m with 3 steps (uniform in log-SNR)" in refreshed.properties["schedule / sampler"]
    assert (out / "README.md").read_text() == refreshed.to_markdown()
    with pytest.raises(ConfigError, match="steps"):
        set_defaults(out, steps=0)
    assert json.loads((out / "model_index.json").read_text()) == index           # a refused change writes nothing
    set_defaults(out, self_condition=False)                                      # --self-condition false
    assert CosmosPipeline.from_pretrained(out).sampling.self_condition is False
    assert "no self-conditioning at sampling" in ModelCard.load(out).properties["schedule / sampler"]


def _final_weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "autoencoder/state/model.safetensors"))


def test_resume_reproduces_the_uninterrupted_run(tmp_path, data_files, tiny_encoder_dir, monkeypatch):
    extra = {"autoencoder_stage.loop.save_every": 3, "autoencoder_stage.optim.steps": 6}
    straight = load_config("tiny", _overrides(tmp_path / "straight", data_files, tiny_encoder_dir, **extra))
    train_autoencoder(straight)

    interrupted = load_config("tiny", _overrides(tmp_path / "resumed", data_files, tiny_encoder_dir, **extra))
    real_set_lr, calls = training_loop.set_lr, []

    def crash_at_step_4(optimizer, lr):
        calls.append(lr)
        if len(calls) == 5:  # step index 4: after the state saved at step 3, before step 5 is done
            raise KeyboardInterrupt
        real_set_lr(optimizer, lr)

    monkeypatch.setattr(training_loop, "set_lr", crash_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_autoencoder(interrupted)
    monkeypatch.setattr(training_loop, "set_lr", real_set_lr)
    assert json.loads((tmp_path / "resumed/autoencoder/state/state.json").read_text())["step"] == 3
    train_autoencoder(interrupted)

    a, b = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"
    log = (tmp_path / "resumed/autoencoder/metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in log if '"loss"' in line]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no duplicated lines after resume


def test_a_constant_lr_diffusion_run_can_be_lengthened(tmp_path, data_files, tiny_encoder_dir):
    """steps is left out of the diffusion state's fingerprint under a constant LR: 3 steps, then the same
    run lengthened to 6, ends bit-identical to 6 steps straight; a cosine run still refuses."""
    from cosmos import CheckpointError
    straight = load_config("tiny", _overrides(tmp_path / "straight", data_files, tiny_encoder_dir))
    train_autoencoder(straight)
    compute_latent_stats(straight)
    train_diffusion(straight)
    short = _overrides(tmp_path / "grown", data_files, tiny_encoder_dir, **{"diffusion_stage.optim.steps": 3})
    train_autoencoder(load_config("tiny", short))
    compute_latent_stats(load_config("tiny", short))
    train_diffusion(load_config("tiny", short))
    train_diffusion(load_config("tiny", short + ["diffusion_stage.optim.steps=6"]))
    a = load_file(str(tmp_path / "straight/diffusion/state/model.safetensors"))
    b = load_file(str(tmp_path / "grown/diffusion/state/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cosine = short + ["diffusion_stage.optim.steps=8", "diffusion_stage.optim.schedule=cosine"]
    with pytest.raises(CheckpointError, match="--restart"):
        train_diffusion(load_config("tiny", cosine))


def test_windows_cover_long_texts_with_overlap(tiny_encoder):
    tok = tiny_encoder.tokenizer
    long_text = " ".join(f"word{i}" for i in range(200))
    windows = windows_from_texts([long_text, "short"], tok, max_length=16, stride=7)
    assert windows.shape[1] == 16
    assert (windows[:, 0] == tok.cls_token_id).all()
    assert ((windows == tok.sep_token_id).sum(1) == 1).all()
    body = len(tok(long_text, add_special_tokens=False)["input_ids"])
    assert len(windows) == 1 + (body - 14 + 6) // 7 + 1  # overlapping windows + the short text's one


def test_sentence_windows_start_where_sentences_start(tiny_encoder):
    tok = tiny_encoder.tokenizer
    filler = " ".join(f"w{i}" for i in range(12))
    story = f'One day a cat sat {filler}. She said, "Hi. Go away {filler}." Then he ran {filler}. The end.'
    windows = windows_from_texts([story, "short"], tok, max_length=16, stride=7, start="sentence")
    firsts = [tok.convert_ids_to_tokens(int(row[1])) for row in windows]
    # the story's start, then sentence starts at least 7 tokens apart, never inside the quote ("go")
    assert firsts == ["one", "she", "then", "the", "short"]
    assert (windows[:, 0] == tok.cls_token_id).all() and ((windows == tok.sep_token_id).sum(1) == 1).all()
    anywhere = windows_from_texts([story], tok, max_length=16, stride=7)
    assert [tok.convert_ids_to_tokens(int(row[1])) for row in anywhere][1] not in ("she", "then", "the")
    with pytest.raises(ValueError, match="start must be one of"):
        windows_from_texts([story], tok, max_length=16, start="paragraph")


@pytest.mark.parametrize("override, needle", [
    ("autoencoder_stage.data.window_start=word", "window_start must be one of"),
    ("autoencoder_stage.optim.steps=0", "steps must be a positive integer"),
    ("autoencoder_stage.optim.bogus=1", "unknown field(s) ['bogus']"),
    ("autoencoder.num_latents=99", "num_latents (99) must not exceed max_length"),
    ("diffusion_stage.ema_decay=1.5", "ema_decay"),
    ("mixed_precision=fp8", "mixed_precision"),
    ("autoencoder_stage.augment_ramp_steps=-1", "augment_ramp_steps must be a non-negative integer"),
    ("autoencoder_stage.augment_clean_steps=1.5", "augment_clean_steps must be a non-negative integer"),
])
def test_bad_config_values_are_named(override, needle):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", [override])
    assert needle in str(err.value)


def test_missing_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="cpu-small"):
        load_config("no-such-preset")


def test_missing_data_file_is_named(tmp_path, tiny_encoder_dir):
    files = {"train": str(tmp_path / "absent.jsonl"), "validation": str(tmp_path / "absent.jsonl")}
    cfg = load_config("tiny", _overrides(tmp_path / "run", files, tiny_encoder_dir))
    with pytest.raises(DataError, match="absent.jsonl does not exist"):
        train_autoencoder(cfg)


def test_cli_prints_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "train.autoencoder", "--config", "tiny", "--set",
                             "autoencoder_stage.optim.lr=-1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "lr must be" in result.stderr
    assert "Traceback" not in result.stderr


def test_resume_refuses_a_state_from_another_config(tmp_path, data_files, tiny_encoder_dir):
    from cosmos import CheckpointError
    base = _overrides(tmp_path / "run", data_files, tiny_encoder_dir, **{"autoencoder_stage.optim.steps": 3})
    train_autoencoder(load_config("tiny", base))
    changed = load_config("tiny", base + ["autoencoder.latent_dropout=0.1", "autoencoder_stage.optim.steps=6"])
    with pytest.raises(CheckpointError, match="--restart"):
        train_autoencoder(changed)
    train_autoencoder(changed, restart=True)  # --restart starts over


def test_augmentation_curriculum_ramps_from_clean(tmp_path, data_files, tiny_encoder_dir, monkeypatch):
    """augment_clean_steps / augment_ramp_steps: strength 0 for the clean steps, then a linear ramp to 1, set on
    the model before each step's loss (and unchanged by a resume)."""
    cfg = load_config("tiny", _overrides(tmp_path / "run", data_files, tiny_encoder_dir, **{
        "autoencoder_stage.optim.steps": 6, "autoencoder_stage.augment_clean_steps": 2,
        "autoencoder_stage.augment_ramp_steps": 2}))
    assert [cfg.autoencoder_stage.augment_strength(s) for s in range(6)] == [0, 0, 0.5, 1, 1, 1]
    seen = []
    real_forward = ae_stage.CosmosAutoencoder.forward

    def spy(self, *args, **kwargs):
        if self.training:
            seen.append(self.augment_strength)
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(ae_stage.CosmosAutoencoder, "forward", spy)
    train_autoencoder(cfg)
    assert seen == [0, 0, 0.5, 1, 1, 1]
    assert load_config("tiny").autoencoder_stage.augment_strength(0) == 1.0   # default: the paper's way


def test_ema_warms_up():
    from train.loop import EMA
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.999)
    init = ema.shadow["weight"].clone()
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first update uses decay min(0.999, 1/10) = 0.1, not 0.999
    assert torch.allclose(ema.shadow["weight"], 0.1 * init + 0.9, atol=1e-6)


def _max_difference(a: torch.nn.Module, b: torch.nn.Module, skip: tuple[str, ...] = ()) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    diffs = {k: float((sa[k].float() - sb[k].float()).abs().max()) for k in sa if k not in skip}
    return max(diffs.values()), max(diffs, key=diffs.get)


def test_init_from_starts_both_stages_from_a_checkpoint(tmp_path, data_files, tiny_encoder_dir):
    """A stage's init_from loads an earlier run's weights (a longer schedule, fine-tuning): with a
    vanishing learning rate the new run ends where the source began; the denoiser keeps its own latent
    statistics; a checkpoint of another architecture is refused naming the tensors."""
    from cosmos import CheckpointError
    first = load_config("tiny", _overrides(tmp_path / "first", data_files, tiny_encoder_dir))
    train_autoencoder(first)
    compute_latent_stats(first)
    source = CosmosPipeline.from_pretrained(train_diffusion(first))

    still = {"autoencoder_stage.optim.lr": 1e-12, "autoencoder_stage.optim.warmup_steps": 0,
             "autoencoder_stage.optim.schedule": "constant",
             "autoencoder_stage.optim.steps": 2, "autoencoder_stage.init_from": str(tmp_path / "first/pipeline"),
             "diffusion_stage.optim.lr": 1e-12, "diffusion_stage.optim.warmup_steps": 0,
             "diffusion_stage.optim.steps": 2, "diffusion_stage.init_from": str(tmp_path / "first/pipeline"),
             "diffusion_stage.data.stride": 7}  # other windows, so other latent statistics
    second = load_config("tiny", _overrides(tmp_path / "second", data_files, tiny_encoder_dir, **still))
    train_autoencoder(second)
    compute_latent_stats(second)
    continued = CosmosPipeline.from_pretrained(train_diffusion(second))
    assert _max_difference(continued.autoencoder, source.autoencoder)[0] < 1e-6
    stats = ("latent_mean", "latent_std")
    assert _max_difference(continued.denoiser, source.denoiser, skip=stats)[0] < 1e-6
    card = (export(second, tmp_path / "card", torch.float16, max_windows=8, card=True) / "README.md").read_text()
    assert card.count("started from the weights in") == 2 and "first train the run(s) that init_from names" in card
    assert [s.init_from for s in ModelCard.load(tmp_path / "card").stages] == [str(tmp_path / "first/pipeline")] * 2
    own = load_file(str(tmp_path / "second/latents/stats.safetensors"))
    assert torch.equal(continued.denoiser.latent_mean, own["mean"])
    assert not torch.equal(continued.denoiser.latent_mean, source.denoiser.latent_mean)

    other = load_config("tiny", _overrides(tmp_path / "other", data_files, tiny_encoder_dir,
                                           **{"autoencoder.decoder_layers": 2, **still}))
    with pytest.raises(CheckpointError, match="init_from.*decoder.blocks.1"):
        train_autoencoder(other)


def test_the_probe_head_is_fitted_once_per_data(tmp_path, data_files, tiny_encoder_dir, monkeypatch):
    """probe_head: a second run on the same data and cache reads the fitted head instead of refitting it."""
    shared = {"autoencoder_stage.probe_head": "true", "cache_dir": str(tmp_path / "cache"),
              "autoencoder_stage.optim.steps": 1}
    train_autoencoder(load_config("tiny", _overrides(tmp_path / "a", data_files, tiny_encoder_dir, **shared)))
    assert len(list((tmp_path / "cache").glob("probe-head-*.safetensors"))) == 1

    def refit(*args, **kwargs):
        raise AssertionError("the probe head was fitted again")

    monkeypatch.setattr(ae_stage, "fit_probe_head", refit)
    train_autoencoder(load_config("tiny", _overrides(tmp_path / "b", data_files, tiny_encoder_dir, **shared)))
    a = load_file(str(tmp_path / "a/autoencoder/state/model.safetensors"))
    b = load_file(str(tmp_path / "b/autoencoder/state/model.safetensors"))
    assert torch.equal(a["head.weight"], b["head.weight"])


def test_the_continue_preset_builds_the_architecture_it_starts_from():
    """init_from only loads weights of the same architecture: cpu-small-continue changes schedules, not models."""
    cfg, base = load_config("cpu-small-continue"), load_config("cpu-small-v1")  # the recipe it continues
    assert cfg.autoencoder_stage.init_from is not None and cfg.diffusion_stage.init_from is not None
    assert cfg.autoencoder == base.autoencoder and cfg.denoiser == base.denoiser
    assert cfg.autoencoder_stage.data == base.autoencoder_stage.data
    assert cfg.diffusion_stage.data == base.diffusion_stage.data
    assert cfg.run_dir != base.run_dir


def test_the_embedded_default_preset_changes_only_the_denoiser_windows_and_sampling():
    """cpu-small-v2 (the embedded default since issue 27) = cpu-small-v1 + sentence-start denoiser windows, sampled
    without self-conditioning to the state; it reuses the embedded autoencoder, which its card names."""
    cfg, base = load_config("cpu-small-v2"), load_config("cpu-small-v1")
    assert cfg.autoencoder == base.autoencoder and cfg.denoiser == base.denoiser
    assert cfg.diffusion_stage.data.window_start == "sentence" != base.diffusion_stage.data.window_start
    assert cfg.diffusion_stage.data.sources == base.diffusion_stage.data.sources
    assert cfg.diffusion_stage.optim == base.diffusion_stage.optim
    assert not cfg.sampling.self_condition and not cfg.sampling.final_x0
    assert str(cfg.autoencoder_dir) == "assets/cosmos-cpu-small"
    card = ModelCard.load(Path(__file__).resolve().parents[1] / "assets/cosmos-cpu-small")
    if card is not None:                        # the embedded checkpoint is this preset's export
        assert card.preset == "cpu-small-v2"
