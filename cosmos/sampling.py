"""Samplers: plain functions with one signature that *yield* every step (k-diffusion style).

    sample_xxx(denoiser, schedule, z_start, steps, *, generator, t_start, t_end, self_condition)
        -> Iterator[Step]

``denoiser(z_t, t, self_cond) -> x0_hat`` works in normalised latent space, (B, N, D); ``t`` is (B,).
Draining the iterator is plain generation; the last Step's ``z_t`` is the sample. The time grid is
uniform from ``t_start`` (1 = pure noise) down to ``t_end`` (paper: 0.05). Self-conditioning feeds
each step the previous step's x0 estimate (zeros at the first step).
All random draws come from ``generator`` on the CPU, so a seed gives the same result on any device.

Why not diffusers' DDIMScheduler: it works on a discrete table of betas, while tan-d is a
continuous-time schedule whose a(t), s(t) we evaluate at any t (and the paper's default sampler is
an SDE solver, which diffusers does not provide for custom continuous schedules).

Prompted generation wraps the denoiser with :func:`guided` (classifier-free guidance); the samplers
themselves never see the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from .config import is_guidance_scale
from .schedule import TanDSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
Pin = Callable[[torch.Tensor, int, float], torch.Tensor]
"""``pin(z, i, t)``: the state after step i at time t, with some positions replaced (infill: the kept latents)."""


@dataclass
class Step:
    i: int                 # 0-based step index
    t: float               # time of z_t after this step
    z_t: torch.Tensor      # (B, N, D) state after this step (the sample, at the last step)
    x0_hat: torch.Tensor   # (B, N, D) x0 estimate made during this step


def guided(denoiser, source: torch.Tensor, source_mask: torch.Tensor | None, scale: float) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022; method: "Conditional tasks") as a denoiser callable.

    x0 = x0_c + w (x0_c - x0_u), x0_c with the source (B, S, source_dim) and its mask (B, S), x0_u
    with the null source; both halves run in one forward of 2B rows. w = 0 is plain conditional
    sampling (B rows, one forward). ``denoiser`` is a conditional :class:`~cosmos.CosmosDenoiser`:
    the source is encoded once here, not at every step. Self-conditioning receives the guided x0.
    """
    if not is_guidance_scale(scale):
        raise ValueError(f"guidance_scale must be a finite number >= 0, got {scale!r}")
    if source_mask is None:
        source_mask = torch.ones(source.shape[:2], dtype=torch.bool, device=source.device)
    if scale == 0:
        states = denoiser.encode_source(source, source_mask)
        return lambda z_t, t, self_cond: denoiser(z_t, t, self_cond, source_states=states)
    # rows B..2B have an all-False mask: the denoiser gives them the null source
    both = denoiser.encode_source(torch.cat([source, source]), torch.cat([source_mask, torch.zeros_like(source_mask)]))

    def guided_denoiser(z_t: torch.Tensor, t: torch.Tensor, self_cond: torch.Tensor | None) -> torch.Tensor:
        twice = lambda x: None if x is None else torch.cat([x, x])  # noqa: E731
        x0_c, x0_u = denoiser(twice(z_t), twice(t.expand(z_t.shape[0])), twice(self_cond),
                              source_states=both).chunk(2)          # each (B, N, D)
        return x0_c + scale * (x0_c - x0_u)

    return guided_denoiser


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn on the CPU (device-independent seeds)."""
    return torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)


def time_grid(steps: int, t_start: float, t_end: float) -> torch.Tensor:
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not (0.0 <= t_end < t_start <= 1.0):
        raise ValueError(f"need 0 <= t_end < t_start <= 1, got t_start={t_start}, t_end={t_end}")
    return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


def _batch_t(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(like.device, torch.float32).expand(like.shape[0])  # (B,)


def sample_euler_maruyama(denoiser: Denoiser, schedule: TanDSchedule, z_start: torch.Tensor, steps: int, *,
                          generator: torch.Generator | None = None, t_start: float = 1.0, t_end: float = 0.05,
                          self_condition: bool = True, pin: Pin | None = None) -> Iterator[Step]:
    """Euler-Maruyama on the reverse VP-SDE (Song et al. 2021); the paper's default sampler.

    Reverse drift f - g^2 score with f = -beta z / 2, g^2 = beta, score = -(z - a x0_hat) / s^2.
    The last step returns the mean (no noise added), as in the paper. ``pin`` (optional) rewrites the
    state after every step (replacement conditioning, as RePaint; ``cosmos.infill``).
    """
    ts = time_grid(steps, t_start, t_end)
    z, x0 = z_start, None
    for i in range(steps):
        t, t_next = ts[i], ts[i + 1]
        dt = float(t_next - t)                                    # negative
        x0 = denoiser(z, _batch_t(t, z), x0 if self_condition else None)
        a, s, beta = (float(f(t)) for f in (schedule.alpha, schedule.sigma, schedule.beta))
        score = -(z - a * x0) / (s * s)
        drift = -0.5 * beta * z - beta * score
        z = z + drift * dt
        if i < steps - 1:
            z = z + (beta * -dt) ** 0.5 * randn_like(z, generator)
        if pin is not None:
            z = pin(z, i, float(t_next))
        yield Step(i, float(t_next), z, x0)


def sample_ddim(denoiser: Denoiser, schedule: TanDSchedule, z_start: torch.Tensor, steps: int, *,
                generator: torch.Generator | None = None, t_start: float = 1.0, t_end: float = 0.05,
                self_condition: bool = True, pin: Pin | None = None) -> Iterator[Step]:
    """Deterministic DDIM (Song et al. 2021), the probability-flow ODE's first-order solver.

    z_next = a(t_next) x0_hat + s(t_next) eps_hat with eps_hat = (z - a(t) x0_hat) / s(t).
    ``generator`` is accepted for the shared signature and unused (a ``pin`` may draw from it).
    """
    ts = time_grid(steps, t_start, t_end)
    z, x0 = z_start, None
    for i in range(steps):
        t, t_next = ts[i], ts[i + 1]
        x0 = denoiser(z, _batch_t(t, z), x0 if self_condition else None)
        a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
        eps = (z - a * x0) / s
        z = float(schedule.alpha(t_next)) * x0 + float(schedule.sigma(t_next)) * eps
        if pin is not None:
            z = pin(z, i, float(t_next))
        yield Step(i, float(t_next), z, x0)


def invert_ddim(denoiser: Denoiser, schedule: TanDSchedule, z0: torch.Tensor, steps: int, *,
                t_start: float = 1.0, t_end: float = 0.05, self_condition: bool = True) -> torch.Tensor:
    """Run DDIM backwards (clean latent -> noise): an approximate inverse of :func:`sample_ddim`.

    Starts from a(t_end) z0 at t_end (the noise part at t_end is taken as zero) and integrates up
    to t_start, chaining self-conditioning in that direction; returns z at t_start, (B, N, D).
    """
    ts = time_grid(steps, t_start, t_end).flip(0)
    z, x0 = float(schedule.alpha(ts[0])) * z0, None
    for i in range(steps):
        t, t_next = ts[i], ts[i + 1]
        x0 = denoiser(z, _batch_t(t, z), x0 if self_condition else None)
        eps = (z - float(schedule.alpha(t)) * x0) / float(schedule.sigma(t))
        z = float(schedule.alpha(t_next)) * x0 + float(schedule.sigma(t_next)) * eps
    return z


SAMPLERS = {"sde": sample_euler_maruyama, "ddim": sample_ddim}
"""The samplers by name: what ``SamplingConfig.sampler`` and every task's ``sampler=`` take."""

SAMPLER_LABELS = {"sde": "SDE (Euler-Maruyama, the paper's default)", "ddim": "DDIM (deterministic)"}
"""Each sampler's name as a person reads it (the app's choices)."""


def get_sampler(name: str):
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name]
