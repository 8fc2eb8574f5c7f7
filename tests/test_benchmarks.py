"""Issue 5's machinery: preset inheritance, the AR baseline stage, quality metrics, the speed comparison and
the report, on tiny models and data made here."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bench import quality, report
from cosmos.ar_lm import ArLanguageModel
from cosmos.config import ConfigError
from train.ar import train_ar
from train.config import load_config

from test_train import _overrides, data_files  # noqa: F401  (module fixture: tiny stories in jsonl files)


# --- presets -------------------------------------------------------------------------------------------
def test_a_preset_extends_its_base_key_by_key(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text('base = "tiny"\nrun_dir = "runs/child"\ncache_dir = "runs/shared"\n'
                     '[autoencoder]\nnum_latents = 8\n[diffusion_stage.optim]\nsteps = 7\n')
    cfg, base = load_config(child), load_config("tiny")
    assert cfg.preset == "child" and cfg.run_dir == "runs/child"
    assert cfg.autoencoder.num_latents == 8 and cfg.diffusion_stage.optim.steps == 7
    assert cfg.autoencoder.max_length == base.autoencoder.max_length            # kept from the base
    assert cfg.diffusion_stage.optim.lr == base.diffusion_stage.optim.lr
    assert str(cfg.cache_path) == "runs/shared" and str(base.cache_path) == "runs/tiny/cache"


def test_base_cycles_and_bad_bases_are_named(tmp_path):
    (tmp_path / "a.toml").write_text(f'base = "{tmp_path / "b.toml"}"\n')
    (tmp_path / "b.toml").write_text(f'base = "{tmp_path / "a.toml"}"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text("base = 3\n")
    with pytest.raises(ConfigError, match="base must be"):
        load_config(tmp_path / "c.toml")
    (tmp_path / "d.toml").write_text('base = "no-such-preset"\n')
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "d.toml")


def test_bench_presets_change_one_thing_each():
    l8 = load_config("bench-l8")
    assert {load_config(p).autoencoder.num_latents for p in ("bench-l16", "bench-l8", "bench-l4", "bench-l1")} == \
        {4, 8, 16, 64}
    ce = load_config("bench-ce-only").autoencoder
    assert (ce.mse_weight, ce.token_drop_prob, ce.feature_noise_delta, ce.latent_dropout) == (0.0, 0.0, 1.0, 0.0)
    for preset in ("bench-l16", "bench-l4", "bench-l1", "bench-ce-only", "bench-ar"):
        cfg = load_config(preset)
        assert cfg.autoencoder_stage.optim == l8.autoencoder_stage.optim
        assert cfg.diffusion_stage.optim == l8.diffusion_stage.optim and cfg.cache_path == l8.cache_path
        assert cfg.run_dir != l8.run_dir
    # the chunk-local rows: the same budget; each twin changes one thing from bench-chunk-l8
    chunk = load_config("bench-chunk-l8")
    assert chunk.autoencoder.compressor_type == "chunk" and l8.autoencoder.compressor_type == "perceiver"
    assert chunk.autoencoder_stage.optim.steps == l8.autoencoder_stage.optim.steps
    assert chunk.diffusion_stage.optim == l8.diffusion_stage.optim and chunk.denoiser == l8.denoiser
    assert load_config("bench-chunk-l4").autoencoder.num_latents == 16
    ce = load_config("bench-chunk-ce-only").autoencoder
    assert (ce.mse_weight, ce.token_drop_prob, ce.feature_noise_delta, ce.latent_dropout) == (0.0, 0.0, 1.0, 0.0)
    curriculum = load_config("bench-chunk-curriculum")
    assert curriculum.autoencoder == chunk.autoencoder and chunk.autoencoder_stage.augment_strength(0) == 1.0
    assert [curriculum.autoencoder_stage.augment_strength(s) for s in (0, 99, 149, 199, 249)] == [0, 0, 0.5, 1, 1]
    paper = load_config("bench-chunk-curriculum-paper")
    assert paper.autoencoder_stage == curriculum.autoencoder_stage
    assert (paper.autoencoder.token_drop_prob, paper.autoencoder.feature_noise_delta,
            paper.autoencoder.latent_dropout) == (0.3, 0.7, 0.4)
    for preset in ("bench-chunk-l4", "bench-chunk-ce-only", "bench-chunk-curriculum", "bench-chunk-curriculum-paper"):
        cfg = load_config(preset)
        assert cfg.autoencoder_stage.optim == chunk.autoencoder_stage.optim and cfg.run_dir != chunk.run_dir
        assert cfg.diffusion_stage.optim == chunk.diffusion_stage.optim and cfg.denoiser == chunk.denoiser


# --- the AR baseline -----------------------------------------------------------------------------------
AR_SMALL = {"ar.num_layers": 1, "ar.hidden": 32, "ar.num_heads": 2, "ar.ffn_hidden": 64, "ar.max_positions": 64,
            "ar_stage.optim.steps": 4, "ar_stage.optim.warmup_steps": 1, "ar_stage.loop.eval_every": 2,
            "ar_stage.loop.save_every": 2, "ar_stage.loop.eval_windows": 8, "ar_stage.sample_count": 2}


@pytest.fixture(scope="module")
def trained_ar(tmp_path_factory, data_files, tiny_encoder_dir):  # noqa: F811
    run = tmp_path_factory.mktemp("ar-run")
    cfg = load_config("tiny", _overrides(run, data_files, tiny_encoder_dir, **AR_SMALL))
    return cfg, train_ar(cfg)


def test_ar_stage_writes_a_loadable_model_and_logs(trained_ar):
    cfg, folder = trained_ar
    assert {"config.json", "model.safetensors", "vocab.safetensors", "ar.json"} <= {p.name for p in folder.iterdir()}
    lm = ArLanguageModel.from_pretrained(folder)
    assert lm.max_length == cfg.autoencoder.max_length
    log = [json.loads(line) for line in (cfg.path / "ar_train" / "metrics.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "start" and log[0]["params"] == lm.num_parameters()
    evals = [r for r in log if r.get("event") == "eval"]
    assert [r["step"] for r in evals] == [2, 4] and all(math.isfinite(r["val_loss"]) for r in evals)
    # tied embedding/head: the state stores one copy and still restores the model
    state = load_file(str(cfg.path / "ar_train" / "state" / "model.safetensors"))
    assert ("lm_head.weight" in state) != ("model.embed_tokens.weight" in state)


def test_ar_resume_equals_an_uninterrupted_run(tmp_path, data_files, tiny_encoder_dir, trained_ar):  # noqa: F811
    cfg2 = load_config("tiny", _overrides(tmp_path, data_files, tiny_encoder_dir,
                                          **{**AR_SMALL, "ar_stage.optim.steps": 2}))
    train_ar(cfg2)
    cfg4 = load_config("tiny", _overrides(tmp_path, data_files, tiny_encoder_dir, **AR_SMALL))
    with pytest.raises(Exception, match="--restart"):   # the fingerprint holds the step budget
        train_ar(cfg4)
    resumed = ArLanguageModel.from_pretrained(train_ar(cfg4, restart=True))
    straight = ArLanguageModel.from_pretrained(trained_ar[1])
    for (name, a), (_, b) in zip(resumed.model.state_dict().items(), straight.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_ar_generation_perplexity_and_vocabulary(trained_ar):
    lm = ArLanguageModel.from_pretrained(trained_ar[1])
    texts = lm.generate(3, seed=5)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts) and texts == lm.generate(3, seed=5)
    rows = lm.generate_ids(2, 10, seed=0, stop_at_sep=False)
    assert rows.shape == (2, 10) and int(rows.max()) < len(lm.vocab)
    ppl = lm.perplexities(["the cat ran", "a" * 500, ""])
    assert len(ppl) == 3 and all(math.isfinite(p) and p >= 1.0 for p in ppl)
    unseen = int(lm.vocab.max()) + 1 if int(lm.vocab.max()) + 1 < lm.tokenizer.vocab_size else None
    ids = torch.tensor([int(lm.vocab[3])] + ([unseen] if unseen is not None else []))
    mapped = lm.to_lm_ids(ids)
    assert int(lm.vocab[mapped[0]]) == int(ids[0])
    if unseen is not None:
        assert int(mapped[1]) == lm.unk


def test_ar_loader_names_what_is_missing(tmp_path, trained_ar):
    from cosmos.checkpoint import CheckpointError
    import shutil
    broken = tmp_path / "ar"
    shutil.copytree(trained_ar[1], broken)
    (broken / "vocab.safetensors").unlink()
    with pytest.raises(CheckpointError, match="vocab.safetensors is missing"):
        ArLanguageModel.from_pretrained(broken)


# --- quality -------------------------------------------------------------------------------------------
def test_well_formed_share_and_subsets():
    assert quality.well_formed_share([1.0, 5.0, 10.0, 20.0], 10.0) == 0.75
    assert quality.well_formed_share([], 3.0) == 0.0
    items = [str(i) for i in range(50)]
    assert quality.seeded_subset(items, 10, 3) == quality.seeded_subset(items, 10, 3) != quality.seeded_subset(items, 10, 4)
    assert len(quality.seeded_subset(items, 99, 0)) == 50


def test_mauve_features_gpt2_style_and_the_offline_fallback(tmp_path, tiny_encoder, monkeypatch):
    from transformers import GPT2Config, GPT2Model

    tokenizer = tiny_encoder.tokenizer           # any tokenizer works; a causal LM of its vocabulary size
    model = GPT2Model(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2)).eval()
    folder = tmp_path / "tiny-gpt2"
    model.save_pretrained(folder), tokenizer.save_pretrained(folder)
    featurize = quality.mauve_featurizer(str(folder), tiny_encoder, 16)
    assert isinstance(featurize, quality.CausalLMFeatures) and featurize.name.endswith("(last token)")
    texts = ["the cat sat", "a dog ran far away", "the cat sat"]
    feats = featurize(texts, batch=2)                      # padding in a batch must not change a text's feature
    assert feats.shape == (3, 16) and np.allclose(feats[0], feats[2], atol=1e-5)
    alone = featurize(["a dog ran far away"])
    assert np.allclose(feats[1], alone[0], atol=1e-5)
    with torch.inference_mode():                           # = the final hidden state at the last token
        ids = torch.tensor([tokenizer("a dog ran far away")["input_ids"]])
        assert np.allclose(alone[0], model(input_ids=ids).last_hidden_state[0, -1].numpy(), atol=1e-5)
    # auto: the paper's gpt2-large when it loads offline, else the frozen encoder, named in the results
    monkeypatch.setattr(quality, "MAUVE_LM", str(tmp_path / "not-downloaded"))
    fallback = quality.mauve_featurizer("auto", tiny_encoder, 16)
    assert isinstance(fallback, quality.EncoderFeatures) and fallback.name.endswith("(mean-pooled)")
    assert fallback(texts).shape == (3, tiny_encoder.hidden_size)
    monkeypatch.setattr(quality, "MAUVE_LM", str(folder))
    assert isinstance(quality.mauve_featurizer("auto", tiny_encoder, 16), quality.CausalLMFeatures)


def test_held_out_windows_are_training_style(tiny_encoder):
    texts = ["word " * 100, "short one"]
    windows = quality.held_out_windows(texts, tiny_encoder.tokenizer, 16)
    assert len(windows) > 2 and all(len(tiny_encoder.tokenizer(w)["input_ids"]) <= 16 for w in windows)


def test_held_out_windows_can_start_where_sentences_start(tiny_encoder):
    story = " ".join(f"The cat number {k} ran to the red ball and sat." for k in range(8))
    anywhere = quality.held_out_windows([story], tiny_encoder.tokenizer, 16)
    at_sentences = quality.held_out_windows([story], tiny_encoder.tokenizer, 16, start="sentence")
    assert len(at_sentences) > 2 and all(w.lower().startswith("the cat number") for w in at_sentences)
    assert not all(w.lower().startswith("the cat number") for w in anywhere)


def test_evaluate_cosmos_and_ar_rows(tiny_pipeline, trained_ar, tiny_encoder):
    lm = ArLanguageModel.from_pretrained(trained_ar[1])
    windows = quality.held_out_windows(["the cat ran to the red ball. " * 6, "a big dog saw the sun. " * 6,
                                        "happy little tree found blue things. " * 5], tiny_encoder.tokenizer, 16)
    common = dict(samples=12, seeds=2, steps=2, windows=windows, train_texts=["the cat ran to the red ball"],
                  featurize=quality.EncoderFeatures(tiny_encoder, 16), ar_judge=lm, pairs=2, max_length=16)
    row = quality.evaluate(tiny_pipeline, **common)
    assert {"mauve", "diversity", "memorization", "gen_ppl", "reconstruction_accuracy", "robustness",
            "interpolation"} <= set(row)
    assert len(row["mauve"]["runs"]) == 2 and 0.0 <= row["mauve"]["mean"] <= 1.0
    assert 0.0 <= row["interpolation"]["interior_well_formed"] <= 1.0 and row["interpolation"]["points"] == 9
    assert set(row["robustness"]) == {f"{s:g}" for s in quality.NOISE_LEVELS}
    assert row["reconstruction_gen_ppl"] > 1.0
    ar_row = quality.evaluate(lm, **common)
    assert "reconstruction_accuracy" not in ar_row and "reconstruction_gen_ppl" not in ar_row and "lm" in ar_row["params"]


# --- speed ---------------------------------------------------------------------------------------------
def test_speed_comparison_rows_are_ratios_of_measured_latencies():
    from bench.speed import compare_with_ar
    rows = compare_with_ar([16], [1], [1, 2], repeats=1, sampler="sde")
    ar = next(r for r in rows if r["steps"] is None)
    cosmos = [r for r in rows if r["steps"]]
    assert [r["steps"] for r in cosmos] == [1, 2] and ar["speedup_vs_ar_kv"] == 1.0
    for r in cosmos:
        assert r["latents"] == 2 and r["speedup_vs_ar_kv"] == pytest.approx(ar["latency_ms"] / r["latency_ms"])


def test_speed_comparison_adds_each_sampler_at_its_matched_steps():
    from bench.speed import compare_with_ar
    rows = compare_with_ar([16], [1], [2], repeats=1, sampler="sde",
                           matched={"dpm2m": {"steps": 3, "time_grid": "logsnr", "final_x0": False},
                                    "sde": {"steps": 2, "time_grid": "uniform", "final_x0": True}})
    matched = {r["model"]: r for r in rows if r["matched_quality"]}
    assert set(matched) == {"dpm2m 3 (logsnr), matched", "sde 2 (uniform, x0 end), matched"}
    assert matched["dpm2m 3 (logsnr), matched"]["steps"] == 3


# --- fewer steps (issue 19) -------------------------------------------------------------------------------
def _steps_row(sampler, grid, steps, mauve, div, ppl, speed):
    spread = lambda v: {"mean": v, "std": 0.05 if v < 1 else 5.0, "runs": [v]}  # noqa: E731
    return {"sampler": sampler, "time_grid": grid, "steps": steps, "name": f"{sampler}/{grid}/{steps}",
            "samples_per_s": {"4": speed, "16": 2 * speed}, "mauve": spread(mauve), "diversity": spread(div),
            "gen_ppl": spread(ppl), "example_samples": ["a text"]}


def test_steps_settings_and_the_matching_rule():
    from bench import steps
    names = [s.name for s in steps.settings(["sde", "dpm2m"], [10, 200], [10])]
    assert names == ["sde/uniform/10", "sde/uniform/200", "dpm2m/uniform/10", "dpm2m/uniform/200", "dpm2m/logsnr/10"]
    rows = [_steps_row("sde", "uniform", 200, 0.60, 0.30, 100.0, 1.0),     # the reference: std 0.05 / 5.0
            _steps_row("sde", "uniform", 10, 0.70, 0.50, 106.0, 20.0),     # gen. PPL worse by more than 5: no
            _steps_row("dpm2m", "uniform", 10, 0.56, 0.26, 104.0, 20.0),   # every metric within the spread: yes
            _steps_row("dpm2m", "logsnr", 10, 0.54, 0.30, 90.0, 21.0),     # MAUVE worse by more than 0.05: no
            _steps_row("dpm2m", "uniform", 25, 0.66, 0.35, 80.0, 8.0)]     # better everywhere: yes
    fastest, fewest = steps.recommend(rows, 4)
    assert [r["matches_reference"] for r in rows] == [True, False, True, False, True]
    assert fastest == "dpm2m/uniform/10"
    assert fewest == {"sde": {"steps": 200, "time_grid": "uniform", "final_x0": False},
                      "dpm2m": {"steps": 10, "time_grid": "uniform", "final_x0": False}}
    assert steps.recommend(rows[1:], 4) == (None, {})     # no 200-step SDE row: nothing to match


def test_steps_measures_a_setting_and_the_ar_point(tiny_pipeline, trained_ar, tiny_encoder):
    from bench import steps
    lm = ArLanguageModel.from_pretrained(trained_ar[1])
    windows = quality.held_out_windows(["the cat ran to the red ball. " * 6, "a big dog saw the sun. " * 6],
                                       tiny_encoder.tokenizer, 16)
    common = dict(seeds=2, samples=6, windows=windows, featurize=quality.EncoderFeatures(tiny_encoder, 16),
                  speed_batches=[2], repeats=1)
    default = tiny_pipeline.sampling
    row = steps.measure(tiny_pipeline, steps.Setting("dpm2m", "logsnr", 3), judge=lm, **common)
    assert tiny_pipeline.sampling == default                      # the pipeline's defaults are left as they were
    assert row["name"] == "dpm2m/logsnr/3" and row["samples_per_s"]["2"] > 0
    assert len(row["mauve"]["runs"]) == 2 and row["gen_ppl"]["mean"] > 1 and 0 <= row["diversity"]["mean"] <= 1
    # the row's samples are the pipeline's own at that setting (seed 0)
    tiny_pipeline.sampling = dataclasses.replace(default, time_grid="logsnr")
    try:
        assert row["example_samples"] == tiny_pipeline.generate(6, steps=3, sampler="dpm2m", seed=0).texts[:3]
    finally:
        tiny_pipeline.sampling = default
    ar = steps.measure_ar(lm, 16, **common)
    assert ar["samples_per_s"]["2"] > 0 and len(ar["diversity"]["runs"]) == 2


# --- report --------------------------------------------------------------------------------------------
def _quality_result(mauve: float, cosmos: bool) -> dict:
    spread = lambda v: {"mean": v, "std": 0.01, "runs": [v]}  # noqa: E731
    r = {"settings": {"samples": 8, "seeds": 1, "steps": 5, "pairs": 2, "held_out_windows": 40, "window_tokens": 64},
         "mauve": spread(mauve), "diversity": spread(0.2), "memorization": spread(0.3), "gen_ppl": spread(40.0),
         "example_samples": ["a sample text"], "training": None}
    if cosmos:
        r.update(params={"denoiser": 10, "decoder_and_head": 5, "compressor": 3, "latents": [8, 384]},
                 reconstruction_accuracy=0.5, robustness={"0": 0.5, "0.5": 0.3, "1": 0.1},
                 interpolation={"interior_well_formed": 0.4, "ends_well_formed": 0.6})
    else:
        r["params"] = {"lm": 20}
    return r


def test_report_renders_tables_findings_and_figures(tmp_path, monkeypatch):
    results = tmp_path / "results"
    (results / "quality").mkdir(parents=True)
    for name, mauve, cosmos in (("bench-l8", 0.02, True), ("bench-ar", 0.5, False), ("bench-ce-only", 0.01, True)):
        result = _quality_result(mauve, cosmos)
        if name == "bench-l8":
            result["reconstruction_gen_ppl"] = 37.8        # measured since issue 27; older rows lack it
        (results / "quality" / f"{name}.json").write_text(json.dumps(result))
    speed_rows = [{"length": 64, "batch": 1, "model": "AR, KV cache", "steps": None, "latency_ms": 100.0,
                   "speedup_vs_ar_kv": 1.0},
                  {"length": 64, "batch": 1, "model": "Cosmos 5 steps", "steps": 5, "latency_ms": 50.0,
                   "speedup_vs_ar_kv": 2.0}]
    (results / "speed-vs-ar.json").write_text(json.dumps({
        "machine": {"cpu": "test cpu", "cpu_count": 2, "torch": "x", "torch_threads": 2, "loadavg_1min_before": 0.1},
        "settings": {"lengths": [64], "batches": [1], "steps": [5], "repeats": 3, "sampler": "sde", "vocab": 100},
        "results": speed_rows}))
    steps_rows = [_steps_row("sde", "uniform", 200, 0.60, 0.30, 100.0, 1.0),
                  _steps_row("dpm2m", "uniform", 10, 0.56, 0.26, 104.0, 20.0)]
    steps_rows[0]["matches_reference"], steps_rows[1]["matches_reference"] = True, True
    (results / "steps.json").write_text(json.dumps({
        "pipeline": "assets/cosmos-cpu-small", "judge": "bench-ar",
        "settings": {"samples": 8, "seeds": 3, "speed_batches": [4, 16], "repeats": 3, "mauve_features": "enc"},
        "machine": {"cpu": "test cpu", "torch_threads": 2}, "rows": steps_rows,
        "ar": {**_steps_row("ar", "", 0, 0.8, 0.5, 40.0, 3.0)}, "recommended": "dpm2m/uniform/10",
        "fewest_matching_steps": {"sde": {"steps": 200, "time_grid": "uniform"},
                                  "dpm2m": {"steps": 10, "time_grid": "uniform"}}}))
    monkeypatch.setattr(report, "RESULTS", results)
    monkeypatch.setattr(report, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(report, "FIGURES", tmp_path / "docs" / "figures")
    import plotly.graph_objects as go
    monkeypatch.setattr(go.Figure, "write_image", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no browser")))
    text = report.render().read_text()
    row = next(line for line in text.splitlines() if line.startswith("| Cosmos, N = L/8 = 8 latents (`bench-l8`)"))
    assert "| 0.020 ± 0.010 |" in row and "| 0.40 (0.60) |" in row and "| 0.500 (38) |" in row
    ce_only = next(line for line in text.splitlines() if "(`bench-ce-only`)" in line)
    assert "| 0.500 | 0.40 (0.60) |" in ce_only
    assert "**loses to** the AR baseline on MAUVE (0.020 vs 0.500)" in text
    assert "clean reconstruction 0.500 vs 0.500" in text
    assert "| 64 | 1 | 100 | 50 (2.00x) |" in text
    assert "(figures/speed.html)" in text and (tmp_path / "docs/figures/speed.html").is_file()
    assert ("| dpm2m | uniform | 10 | state at t_end | 0.560 ± 0.050 | 0.260 ± 0.050 | 104.0 ± 5.0 | 20.0 | 40.0 | "
            "**yes** |") in text
    assert "Fastest matching setting at batch 4: **dpm2m, 10 steps, uniform grid** (20.0 samples/s)" in text
    assert "(figures/steps.html)" in text and (tmp_path / "docs/figures/steps.html").is_file()
    assert "Not measured yet: `python -m bench.conditional --pipeline assets/cosmos-story-cpu`" in text
    assert "Not measured yet: `bench-l1`, `bench-l16`, `bench-l4`" in text   # presets without results, named
    table = text[text.index("## Unconditional quality"):]
    order = [table.index(f"`{n}`") for n in ("bench-l8", "bench-ce-only", "bench-ar")]
    assert order == sorted(order)        # rows in the family's order
    # a conditional result adds the guidance table
    spread = lambda v: {"mean": v, "std": 0.0, "runs": [v]}  # noqa: E731
    (results / "conditional-story.json").write_text(json.dumps({
        "pipeline": "runs/story/pipeline",
        "settings": {"prompts": 4, "seeds": 1, "steps": 5, "max_length": 64},
        "scales": [{"guidance_scale": 0.0, "f1": spread(0.5), "f1_shuffled": spread(0.4), "f1_gap": spread(0.1),
                    "diversity": spread(0.3), "seconds": spread(2.0)},
                   {"guidance_scale": 2.0, "f1": spread(0.45), "f1_shuffled": spread(0.3), "f1_gap": spread(0.15),
                    "diversity": spread(0.2), "seconds": spread(4.0)}],
        "reference": {"diversity": 0.6}}))
    text = report.render().read_text()
    assert "| 0 | 0.500 ± 0.000 | 0.400 ± 0.000 | 0.100 ± 0.000 | 0.300 ± 0.000 | 2.0 ± 0.0 |" in text
    assert "| 2 | 0.450 ± 0.000 | 0.300 ± 0.000 | 0.150 ± 0.000 | 0.200 ± 0.000 | 4.0 ± 0.0 |" in text
    assert "Not measured yet: `python -m bench.conditional" not in text
    # the finding is computed from the table: follows the prompt at w = 0, largest gap at w = 2
    assert ("continuations follow their own prompt (BERTScore-style F1 0.500 against their own reference vs 0.400 "
            "against other prompts' at w = 0). The largest gap, 0.150, is at guidance w = 2 (F1 0.450, "
            "diversity 0.200 vs 0.300 at w = 0)") in text


def test_report_renders_the_infill_table(tmp_path, monkeypatch):
    spread = lambda v: {"mean": v, "std": 0.5, "runs": [v]}  # noqa: E731
    task = lambda kept: {"kept": kept, "rewritten": [], "gen_ppl": spread(60.0), "control_gen_ppl": 90.0,  # noqa: E731
                         "diversity": spread(0.4), "kept_exact": spread(1.0), "seconds": spread(30.0),
                         "examples": [{"window": "the cat sat", "variants": ["the dog sat"]}]}
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setattr(report, "RESULTS", results)
    assert "Not measured yet: `python -m bench.infill`" in report.infill_section(None)
    (results / "infill.json").write_text(json.dumps({
        "pipeline": "assets/cosmos-cpu-small", "judge": "bench-ar", "original_gen_ppl": 40.0,
        "settings": {"windows": 8, "variants": 2, "seeds": 1, "steps": 10, "sampler": "sde"},
        "middle": task([0, 1, 6, 7]), "beginning": task([4, 5, 6, 7])}))
    text = report.infill_section(report.load(results / "infill.json"))
    assert "The original windows score **40.0**" in text
    assert "| middle | 0, 1, 6, 7 | 60.0 ± 0.5 | 90.0 | 0.400 ± 0.500 | 1.000 | 30 |" in text
    assert 'window: "the cat sat"; variant 1: "the dog sat"' in text
