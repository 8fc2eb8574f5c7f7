"""CosmosPipeline behaviour: generate/trajectory agreement, interpolation and variation contracts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import TINY_N


@pytest.mark.parametrize("sampler", ["sde", "ddim", "dpm2m"])
def test_trajectory_ends_on_what_generate_returns(tiny_pipeline, sampler):
    steps = list(tiny_pipeline.trajectory(num=2, steps=5, sampler=sampler, seed=11))
    out = tiny_pipeline.generate(num=2, steps=5, sampler=sampler, seed=11)
    assert [s.i for s in steps] == list(range(5)) and all(s.num_steps == 5 for s in steps)
    assert all(s.sample_texts is None for s in steps[:-1])
    assert steps[-1].sample_texts == out.texts
    assert all(len(s.texts) == 2 and s.token_ids.shape == (2, tiny_pipeline.max_length) for s in steps)
    assert [round(s.t, 6) for s in steps] == sorted((round(s.t, 6) for s in steps), reverse=True)


@pytest.mark.parametrize("sampler", ["sde", "dpm2m"])
def test_final_x0_ends_on_the_last_x0_estimate(tiny_pipeline, sampler):
    """SamplingConfig.final_x0: generate returns the last step's x0 estimate (decoded), and the trajectory
    ends on the same texts, at t = 0; the steps before are unchanged."""
    default = tiny_pipeline.sampling
    plain = list(tiny_pipeline.trajectory(num=2, steps=4, sampler=sampler, seed=3))
    try:
        tiny_pipeline.sampling = dataclasses.replace(default, final_x0=True)
        steps = list(tiny_pipeline.trajectory(num=2, steps=4, sampler=sampler, seed=3))
        out = tiny_pipeline.generate(num=2, steps=4, sampler=sampler, seed=3)
    finally:
        tiny_pipeline.sampling = default
    assert all(torch.equal(a.z_t, b.z_t) for a, b in zip(plain[:-1], steps[:-1]))
    assert steps[-1].t == 0.0 and plain[-1].t == pytest.approx(default.t_end)
    assert torch.equal(out.latents, steps[-1].x0_hat) and steps[-1].sample_texts == out.texts
    assert not torch.equal(out.latents, plain[-1].sample_latents)


@pytest.mark.parametrize("sampler", ["sde", "ddim", "dpm2m"])
def test_sampling_without_self_conditioning_feeds_zeros(tiny_pipeline, sampler, tmp_path, monkeypatch):
    """SamplingConfig.self_condition = False: every denoiser call gets no x0 estimate back (the feedback
    loop that drives cpu-small's samples into one repeated word, docs/cpu-recipe.md); True (the paper):
    every call after the first gets the previous estimate. Saved only when False."""
    denoiser, default = tiny_pipeline.denoiser, tiny_pipeline.sampling
    assert denoiser.cfg.self_condition
    fed: list[bool] = []
    forward = type(denoiser).forward
    monkeypatch.setattr(type(denoiser), "forward",
                        lambda self, z, t, self_cond=None, *a, **k: fed.append(self_cond is not None) or
                        forward(self, z, t, self_cond, *a, **k))
    tiny_pipeline.generate(num=1, steps=4, sampler=sampler, seed=0)
    assert fed == [False, True, True, True]
    fed.clear()
    try:
        tiny_pipeline.sampling = dataclasses.replace(default, self_condition=False)
        assert not tiny_pipeline.self_conditioned
        tiny_pipeline.generate(num=1, steps=4, sampler=sampler, seed=0)
        assert fed == [False] * 4
        tiny_pipeline.save_pretrained(tmp_path / "off")
    finally:
        tiny_pipeline.sampling = default
    import json
    assert json.loads((tmp_path / "off" / "model_index.json").read_text())["sampling"]["self_condition"] is False
    tiny_pipeline.save_pretrained(tmp_path / "on")
    assert "self_condition" not in json.loads((tmp_path / "on" / "model_index.json").read_text())["sampling"]
    assert type(tiny_pipeline).from_pretrained(tmp_path / "off").sampling.self_condition is False


def test_generate_chunks_larger_requests(tiny_pipeline):
    out = tiny_pipeline.generate(num=9, steps=2, seed=0)  # batch_size 4 -> chunks of 4, 4, 1
    assert len(out.texts) == 9 and out.latents.shape == (9, TINY_N, 64)


@pytest.mark.parametrize("method", ["lerp", "slerp", "noise"])
def test_interpolation_paths(tiny_pipeline, method):
    out = tiny_pipeline.interpolate("the cat sat on the mat", "a dog ran in the park", k=5, method=method, steps=3)
    assert out.weights == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(out.texts) == 5 and out.latents.shape == (5, TINY_N, 64)
    if method != "noise":  # latent-space paths start and end exactly on the two texts' latents
        ends = tiny_pipeline.encode(["the cat sat on the mat", "a dog ran in the park"])
        assert torch.allclose(out.latents[0], ends[0], atol=1e-5)
        assert torch.allclose(out.latents[-1], ends[1], atol=1e-5)


def test_slerp_keeps_vector_norms_between_equal_norm_ends():
    from cosmos.interpolation import slerp
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    b = b / b.norm(dim=-1, keepdim=True) * a.norm(dim=-1, keepdim=True)
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(dim=-1), a.norm(dim=-1), atol=1e-4)


def test_vary_strength_controls_the_start_time(tiny_pipeline, monkeypatch):
    starts = []
    real = tiny_pipeline._denoise

    def spy(z, steps, sampler, generator, t_start=1.0):
        starts.append((t_start, steps))
        return real(z, steps, sampler, generator, t_start=t_start)

    monkeypatch.setattr(tiny_pipeline, "_denoise", spy)
    out = tiny_pipeline.vary("the sun was hot", strength=0.5, num=3, steps=10, seed=1)
    assert len(out.texts) == 3
    t_end = tiny_pipeline.sampling.t_end
    assert starts[-1][0] == pytest.approx(t_end + 0.5 * (1 - t_end)) and starts[-1][1] == 5
    assert tiny_pipeline.vary("the sun was hot", strength=0.5, num=3, steps=10, seed=1).texts == out.texts
