"""The playground on checkpoints that are not this project's own training runs (issue 26, item 5):

- an autoencoder-only folder (no denoiser): encode / decode / interpolate / latent map, and no sampling tab;
- the request caps on a big model: a request predicted to run past the time limit is refused before it starts;
- a release converted by ``python -m train.convert_official`` (the official-format fixture in tests/fixtures/): every
  tab but Infill, the card in About, the latent map by ``python -m train.latent_map``, the paper's sampler setting.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gradio as gr
import pytest
import torch

from app import Limits, about_tab, build_demo, generate_tab, interpolate_tab, latent_map_tab, load_playground, \
    trajectory_tab, vary_tab
from app.context import AUTOENCODER_ONLY_NOTE, DEFAULT_SETTING, PAPER_SETTING, STORY_CHECKPOINT, ModelCost
from app.ui import header
from cosmos import CosmosPipeline, SamplingConfig
from cosmos.checkpoint import DEFAULT_CHECKPOINT

from conftest import PLAYGROUND_REFERENCE, tiny_autoencoder_config


def error_message(excinfo) -> str:
    return str(excinfo.value.message if hasattr(excinfo.value, "message") else excinfo.value)


# ------------------------------------------------------------------------------- autoencoder only

@pytest.fixture(scope="module")
def ae_only(tmp_path_factory, tiny_encoder, tiny_encoder_dir):
    """A saved autoencoder-only pipeline (no denoiser) with a latent map built by train.latent_map."""
    from train.latent_map import build_latent_map

    folder = tmp_path_factory.mktemp("ae-only")
    torch.manual_seed(0)
    pipe = CosmosPipeline.build(tiny_autoencoder_config(tiny_encoder_dir), None,
                                sampling=SamplingConfig(steps=4, batch_size=4), encoder=tiny_encoder)
    assert not pipe.can_generate
    pipe.save_pretrained(folder)
    lmap = build_latent_map(pipe, PLAYGROUND_REFERENCE, num_samples=6)    # samples asked for, none possible
    assert len(lmap.texts) == len(PLAYGROUND_REFERENCE)
    lmap.save(folder)
    return load_playground(folder)


def tab_labels(demo: gr.Blocks) -> list[str]:
    return [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]


def api_names(demo: gr.Blocks) -> set[str]:
    return {dep.api_name for dep in demo.fns.values() if dep.api_name and dep.api_visibility != "private"}


def test_autoencoder_only_has_no_sampling_tab_and_says_why(ae_only):
    demo = build_demo(ae_only)
    assert tab_labels(demo) == ["Interpolate", "Latent map", "About"]
    assert {"generate", "trajectory", "vary", "infill"}.isdisjoint(api_names(demo))
    assert {"interpolate", "latent_map"} <= api_names(demo)
    assert AUTOENCODER_ONLY_NOTE in header(ae_only)
    about = about_tab.about_markdown(ae_only)
    assert "none: it cannot sample" in about and "denoiser none" in about
    assert "cannot infill: it has no denoiser" in about


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_autoencoder_only_interpolates(ae_only, method):
    rows, _, info, produced = interpolate_tab.interpolate(ae_only, "The cat sat.", "It rained all day.", 4, method)
    assert [row[0] for row in rows] == [0.0, 0.333, 0.667, 1.0]
    assert produced.latents.shape == (4, *ae_only.pipe.latent_shape)
    assert info.startswith(f"4 points by {method}")


def test_autoencoder_only_refuses_the_noise_path_and_sampling(ae_only):
    assert list(interpolate_tab.methods_for(ae_only)) == ["slerp", "lerp"]
    with pytest.raises(gr.Error, match="Method must be one of slerp, lerp"):
        interpolate_tab.interpolate(ae_only, "The cat sat.", "It rained.", 4, "noise")
    for call in (lambda: generate_tab.generate(ae_only, 2, 4, "sde", 0),
                 lambda: list(trajectory_tab.run_trajectory(ae_only, 4, "sde", 0)),
                 lambda: vary_tab.vary(ae_only, "The cat sat.", 0.5, 2, 4, "sde", 0)):
        with pytest.raises(gr.Error) as excinfo:
            call()
        assert error_message(excinfo) == AUTOENCODER_ONLY_NOTE


def test_autoencoder_only_draws_the_latent_map(ae_only):
    assert latent_map_tab.layers_for(ae_only) == ["your texts", "interpolation path"]
    figure, summary = latent_map_tab.draw_map(ae_only, "The cat sat.\nIt rained.", ["your texts"], None, None, None,
                                              None)
    assert summary == f"{len(PLAYGROUND_REFERENCE)} reference points; placed: your texts (2)."
    with pytest.raises(gr.Error, match="Overlays must be a list drawn from: your texts, interpolation path"):
        latent_map_tab.draw_map(ae_only, "x", ["generated samples"], None, None, None, None)


# ------------------------------------------------------------------------- caps on a big model

def test_model_cost_counts_denoiser_and_decoder(tiny_playground):
    info = tiny_playground.pipe.summary()
    cost = ModelCost.of(tiny_playground.pipe)
    assert cost.step == pytest.approx(2 * info.parameters["denoiser"] * info.num_latents / 1e9)
    assert cost.decode >= 2 * (info.parameters["decoder"] + info.vocab_size * info.encoder_width) * info.max_length / 1e9
    assert cost.seconds(4, 10, 1, 1.0) == pytest.approx(4 * (10 * cost.step + cost.decode))


def slow(pg, gflops: float, **limits):
    """The same playground as if its model ran at ``gflops`` (what a big model on 2 cores looks like)."""
    return dataclasses.replace(pg, limits=Limits(gflops=gflops, **limits))


def test_requests_predicted_past_the_time_limit_are_refused_before_they_start(tiny_playground):
    pg = tiny_playground
    cost = pg.cost
    rate = (4 * (200 * cost.step + cost.decode)) / 120          # 4 samples x 200 steps would take 120 s
    big = slow(pg, rate)
    with pytest.raises(gr.Error) as excinfo:
        generate_tab.generate(big, 4, 200, "sde", 0, progress=None)
    message = error_message(excinfo)
    assert message.startswith("4 samples x 200 steps would run for about 120 s on this model here")
    fit = int((60 * rate / 4 - cost.decode) // cost.step)
    assert f"past the server's 60 s per request: use at most {fit} steps for 4 samples." in message
    assert 0 < fit < 100                                        # fewer than half the steps fit in half the time
    assert big.cost.seconds(4, fit, 1, rate) <= 60 < big.cost.seconds(4, fit + 1, 1, rate)
    rows, _, _ = generate_tab.generate(big, 4, fit, "sde", 0)   # what it says fits, runs
    assert len(rows) == 4
    # a streamed trajectory decodes every step: it is predicted (and refused) with its decoder passes
    per_step = cost.step + cost.decode
    with pytest.raises(gr.Error, match=r"1 sample x 200 steps would run for about \d+ s"):
        list(trajectory_tab.run_trajectory(slow(pg, 200 * per_step / 100), 200, "sde", 0))


@pytest.mark.parametrize("checkpoint", [DEFAULT_CHECKPOINT, STORY_CHECKPOINT])
def test_the_embedded_checkpoints_still_allow_the_largest_requests(checkpoint):
    """The default rate refuses nothing on the embedded checkpoints that the samples x steps cap allows."""
    cost, lim = ModelCost.of(CosmosPipeline.from_pretrained(checkpoint)), Limits()
    largest = cost.seconds(lim.max_samples, lim.max_sample_steps // lim.max_samples, 1, lim.gflops)
    longest_trajectory = cost.seconds(1, lim.max_steps, lim.max_steps + 1, lim.gflops)
    assert max(largest, longest_trajectory) < lim.max_seconds, (largest, longest_trajectory)


# ------------------------------------------------------------ a converted release (the official fixture)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "official-cosmos"
# Reference passages for the converted folder's latent map: public-domain prose (Moby-Dick, 1851), never
# TinyStories text; the documented command reads such a JSONL of {"text", "source"} records.
PROSE = ["Call me Ishmael.", "Some years ago, never mind how long precisely, I thought I would sail about a little.",
         "It is a way I have of driving off the spleen and regulating the circulation.",
         "There now is your insular city of the Manhattoes, belted round by wharves.",
         "Circumambulate the city of a dreamy Sabbath afternoon.", "Look at the crowds of water-gazers there.",
         "But look! here come more crowds, pacing straight for the water.", "Yes, as every one knows, meditation and "
         "water are wedded for ever.", "Why did the poor poet of Tennessee hesitate?", "I stuffed a shirt or two into "
         "my old carpet-bag, tucked it under my arm, and started for Cape Horn and the Pacific."]


def convert(out: Path, diffusion: bool = True) -> Path:
    """The fixture converted by the documented command (``python -m train.convert_official``), in-process."""
    from train.convert_official import main
    args = ["--autoencoder", str(FIXTURE / "autoencoder-100000.pth"), "--tokenizer", str(FIXTURE / "text-encoder"),
            "--out", str(out)]
    if diffusion:
        args += ["--diffusion", str(FIXTURE / "diffusion-180000.pth"), "--schedule-d", "5"]
    main(args)
    return out


def build_map(folder: Path, tmp: Path, samples: int) -> None:
    """The latent map by the documented command (``python -m train.latent_map``), in-process."""
    from train.latent_map import main
    texts = tmp / "prose.jsonl"
    texts.write_text("".join(json.dumps({"text": t, "source": "moby-dick:test"}) + "\n" for t in PROSE),
                     encoding="utf-8")
    main(["--pipeline", str(folder), "--texts", str(texts), "--per-source", str(len(PROSE)),
          "--samples", str(samples)])


@pytest.fixture(scope="session")
def converted_folder(tmp_path_factory) -> Path:
    """The fixture's AE + diffusion file converted, with a latent map of 10 prose passages + 4 samples."""
    tmp = tmp_path_factory.mktemp("converted")
    folder = convert(tmp / "cosmos-official-tiny")
    build_map(folder, tmp, samples=4)
    return folder


@pytest.fixture(scope="module")
def official(converted_folder):
    return load_playground(converted_folder)


def test_converted_folder_serves_every_tab_but_infill(official):
    demo = build_demo(official)
    assert tab_labels(demo) == ["Generate", "Denoising trajectory", "Interpolate", "Latent map", "Vary / edit", "About"]
    assert official.latent_map is not None and len(official.latent_map.texts) == len(PROSE) + 4
    assert official.latent_map.sources.count("model sample") == 4
    about = about_tab.about_markdown(official)
    assert "Infill needs a chunk-local checkpoint" in about and "each read every token" in about
    assert "official code's block variants" in about
    assert "### Provenance and license" in about and "carry no license from their authors" in about
    assert "Trained with this repository's" not in about            # not this project's training run
    assert "the paper's sampler" in about


def test_converted_generate_trajectory_interpolate_vary(official):
    rows, info, produced = generate_tab.generate(official, 2, 4, "dpm2m", 0, progress=None)
    assert len(rows) == 2 and produced.latents.shape == (2, *official.pipe.latent_shape)
    assert info.startswith("2 samples x 4 steps (DPM2M, seed 0)")
    updates = list(trajectory_tab.run_trajectory(official, 4, "sde", 0))
    assert len(updates) == 4 and "final sample:" in updates[-1][3]
    run = updates[-1][4]
    assert run.final_text == generate_tab.generate(official, 1, 4, "sde", 0, progress=None)[2].texts[0]
    for method in ("slerp", "noise"):
        table, _, info, _ = interpolate_tab.interpolate(official, "Call me Ishmael.", "The sea was calm.", 3, method,
                                                        progress=None)
        assert len(table) == 3 and info.startswith(f"3 points by {method}")
    table, _, _ = vary_tab.vary(official, "Call me Ishmael.", 0.5, 2, 4, "sde", 0, progress=None)
    assert [row[0] for row in table] == ["reconstruction (no noise)", "variation 1", "variation 2"]
    figure, summary = latent_map_tab.draw_map(official, "Call me Ishmael.", ["your texts"], None, None, None, None)
    assert summary == f"{len(PROSE) + 4} reference points; placed: your texts (1)."


def test_the_paper_setting_is_recorded_and_runs(official):
    paper = official.paper_setting
    assert (paper.sampler, paper.steps, paper.time_grid, paper.t_end, paper.final_x0) == ("sde", 200, "uniform", 0.05,
                                                                                          False)
    assert official.pipe.sampling.final_x0                   # the folder starts on a setting that ends on x0
    pipe = official.sampling_pipe(PAPER_SETTING)
    assert pipe is not official.pipe and not pipe.sampling.final_x0 and official.pipe.sampling.final_x0
    # the paper's ending differs from the default's: same seed and steps, other latents
    default = generate_tab.generate(official, 1, 6, "sde", 0, progress=None)
    rows, info, produced = generate_tab.generate(official, 1, 6, "sde", 0, setting=PAPER_SETTING, progress=None)
    assert "The paper's setting: t from 1 to 0.05, returning the last step's mean." in info
    assert torch.equal(produced.latents, pipe.generate(1, steps=6, sampler="sde", seed=0).latents)
    assert not torch.equal(produced.latents, default[2].latents)
    updates = list(trajectory_tab.run_trajectory(official, 3, "sde", 0, setting=PAPER_SETTING))
    assert "The paper's setting" in updates[-1][3]
    with pytest.raises(gr.Error, match="Setting must be one of default, paper"):
        generate_tab.generate(official, 1, 6, "sde", 0, setting="fast", progress=None)


def test_the_setting_radio_sets_steps_and_sampler(official, tiny_playground):
    demo = build_demo(official)
    radios = [b for b in demo.blocks.values() if isinstance(b, gr.Radio) and b.label == "Setting"]
    assert len(radios) == 3                                   # Generate, Denoising trajectory, Vary / edit
    assert [value for _, value in radios[0].choices] == [DEFAULT_SETTING, PAPER_SETTING]
    assert "200 SDE steps, uniform in t, t 1 → 0.05, returns the last step's mean" in radios[0].choices[1][0]
    no_paper = build_demo(tiny_playground)                    # a checkpoint without a recorded paper setting
    assert not [b for b in no_paper.blocks.values() if isinstance(b, gr.Radio) and b.label == "Setting"]
    # the API's inputs are the same whatever is loaded: the setting is session state, not an endpoint input
    assert {"generate", "trajectory", "vary"} <= api_names(demo)
    assert api_names(demo) == api_names(no_paper) - {"infill"}


def test_converted_autoencoder_alone(tmp_path):
    folder = convert(tmp_path / "ae-only", diffusion=False)
    build_map(folder, tmp_path, samples=8)                    # no denoiser: prose only
    pg = load_playground(folder)
    assert not pg.can_generate and tab_labels(build_demo(pg)) == ["Interpolate", "Latent map", "About"]
    assert len(pg.latent_map.texts) == len(PROSE)
    rows, _, _, _ = interpolate_tab.interpolate(pg, "Call me Ishmael.", "The sea was calm.", 3, "slerp", progress=None)
    assert len(rows) == 3


# ------------------------------------------------------------------------------------- publishing

@pytest.mark.parametrize("flags, private", [([], True), (["--private"], True), (["--public"], False)])
def test_push_of_a_converted_folder_is_private_by_default(converted_folder, monkeypatch, capsys, flags, private):
    from train import push
    sent = {}

    def fake_upload(repo_id, kind, files, *, token, private, message):
        sent.update(repo=repo_id, private=private, files={f.path_in_repo for f in files})
        return f"https://huggingface.co/{repo_id}"
    monkeypatch.setattr(push, "upload", fake_upload)
    monkeypatch.setattr(push, "token_from", lambda token: "hf_test")
    assert push.main([str(converted_folder), "--repo", "someone/cosmos-official", *flags]) == 0
    assert sent["private"] is private and {"model_index.json", "README.md", "encoder/config.json"} <= sent["files"]
    err = capsys.readouterr().err
    if private:
        assert "carry no license from their authors, so the repo is created private" in err
    else:
        assert "--public given for weights trained by others" in err


def test_push_of_this_projects_own_checkpoint_stays_public_by_default(monkeypatch, capsys):
    from train import push
    sent = {}
    monkeypatch.setattr(push, "upload", lambda repo_id, kind, files, **kw: sent.update(kw) or "https://hf.co/x")
    monkeypatch.setattr(push, "token_from", lambda token: "hf_test")
    assert push.main([str(DEFAULT_CHECKPOINT), "--repo", "someone/cosmos"]) == 0
    assert sent["private"] is False and "created private" not in capsys.readouterr().err
