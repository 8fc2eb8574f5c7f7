"""Samplers: plain functions with one signature that *yield* every step (k-diffusion style).

    sample_xxx(denoiser, schedule, z_start, steps, *, generator, t_start, t_end, self_condition, pin, grid)
        -> Iterator[Step]

``denoiser(z_t, t, self_cond) -> x0_hat`` works in normalised latent space, (B, N, D); ``t`` is (B,).
Draining the iterator is plain generation; the last Step's ``z_t`` is the sample. The time grid runs
from ``t_start`` (1 = pure noise) down to ``t_end`` (paper: 0.05), uniform in t or in log-SNR
(:func:`time_grid`). Self-conditioning feeds each step the previous step's x0 estimate (zeros at the
first step). All random draws come from ``generator`` on the CPU, so a seed gives the same result on
any device.

Three solvers, one denoiser call per step each:

    sde     Euler-Maruyama on the reverse VP-SDE, the paper's default (first order, stochastic)
    ddim    DDIM, the probability-flow ODE's first-order solver (deterministic)
    dpm2m   DPM-Solver++(2M) (Lu et al. 2022), second-order multistep in log-SNR time (deterministic)

Why not diffusers' DDIMScheduler / DPMSolverMultistepScheduler: both work on a discrete table of
1,000 betas indexed by integer timesteps and run to t = 0, while tan-d is a continuous-time schedule
whose a(t), s(t) we evaluate at any t, whose terminal SNR is exactly 0 (a(1) = 0, log-SNR = -inf), and
whose sampling stops at t_end = 0.05 and returns that state; the paper's default sampler is an SDE
solver, which diffusers does not provide for custom continuous schedules. Each update below is a
few lines of the paper's formula on (a, s) at two times.

Prompted generation wraps the denoiser with :func:`guided` (classifier-free guidance); the samplers
themselves never see the prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from .config import is_guidance_scale
from .schedule import TanDSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
Pin = Callable[[torch.Tensor, int, float], torch.Tensor]
"""``pin(z, i, t)``: the state after step i at time t, with some positions replaced (infill: the kept latents)."""
Noise = Callable[[torch.Tensor, int], torch.Tensor]
"""``noise(z_mean, i)``: the standard normal draw that step i of the SDE sampler adds to its mean ``z_mean``
(same shape); the default draws from the sampler's generator. Given, it fixes the Brownian path (a test
replaying another implementation's noises)."""


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


TIME_GRIDS = {"uniform": "uniform in t", "logsnr": "uniform in log-SNR"}
"""The time grids by name (``SamplingConfig.time_grid``), with how a person reads them."""


def time_grid(steps: int, t_start: float, t_end: float, grid: str = "uniform",
              schedule: TanDSchedule | None = None) -> torch.Tensor:
    """The ``steps + 1`` times t_start = t_0 > t_1 > ... > t_steps = t_end, float64.

    ``"uniform"``: equal steps in t (the paper). ``"logsnr"``: equal steps in lambda = log(a^2 / s^2),
    which spends more steps where the signal is strong (DPM-Solver's default "logSNR" grid). From
    t_start = 1, lambda is -inf, so that grid's first step is the uniform grid's first step and the
    other ``steps - 1`` are equal in lambda from there down to t_end. The uniform grid is spaced in the
    schedule's precision (``ScheduleConfig.compute_dtype``; float64 without a schedule), so a float32
    schedule steps through the same times as the official code's float32 ``linspace``.
    """
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not (0.0 <= t_end < t_start <= 1.0):
        raise ValueError(f"need 0 <= t_end < t_start <= 1, got t_start={t_start}, t_end={t_end}")
    dtype = schedule.dtype if schedule is not None else torch.float64
    uniform = torch.linspace(t_start, t_end, steps + 1, dtype=dtype).double()
    if grid == "uniform":
        return uniform
    if grid != "logsnr":
        raise ValueError(f"unknown time grid {grid!r}; choose one of {sorted(TIME_GRIDS)}")
    if schedule is None:
        raise ValueError("the log-SNR grid needs the schedule")
    if steps == 1:
        return uniform
    head = uniform[:2] if t_start >= 1.0 and steps > 1 else uniform[:1]   # lambda(1) = -inf: one plain step first
    lam = schedule.log_snr(head[-1:]), schedule.log_snr(torch.tensor([t_end], dtype=torch.float64))
    rest = schedule.time_at_log_snr(torch.linspace(float(lam[0]), float(lam[1]), steps + 2 - len(head),
                                                   dtype=torch.float64))[1:]
    ts = torch.cat([head, rest])
    ts[-1] = t_end                                                        # exact end despite round-off
    return ts


def _batch_t(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(like.device, torch.float32).expand(like.shape[0])  # (B,)


def sample_euler_maruyama(denoiser: Denoiser, schedule: TanDSchedule, z_start: torch.Tensor, steps: int, *,
                          generator: torch.Generator | None = None, t_start: float = 1.0, t_end: float = 0.05,
                          self_condition: bool = True, pin: Pin | None = None, grid: str = "uniform",
                          noise: Noise | None = None) -> Iterator[Step]:
    """Euler-Maruyama on the reverse VP-SDE (Song et al. 2021); the paper's default sampler.

    Reverse drift f - g^2 score with f = -beta z / 2, g^2 = beta, score = -(z - a x0_hat) / s^2.
    The last step returns the mean (no noise added), as in the paper. ``pin`` (optional) rewrites the
    state after every step (replacement conditioning, as RePaint; ``cosmos.infill``). ``noise``
    (optional) supplies each step's Gaussian draw instead of the generator (:data:`Noise`).
    """
    ts = time_grid(steps, t_start, t_end, grid, schedule)
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
            z = z + (beta * -dt) ** 0.5 * (randn_like(z, generator) if noise is None else noise(z, i))
        if pin is not None:
            z = pin(z, i, float(t_next))
        yield Step(i, float(t_next), z, x0)


def sample_ddim(denoiser: Denoiser, schedule: TanDSchedule, z_start: torch.Tensor, steps: int, *,
                generator: torch.Generator | None = None, t_start: float = 1.0, t_end: float = 0.05,
                self_condition: bool = True, pin: Pin | None = None, grid: str = "uniform") -> Iterator[Step]:
    """Deterministic DDIM (Song et al. 2021), the probability-flow ODE's first-order solver.

    z_next = a(t_next) x0_hat + s(t_next) eps_hat with eps_hat = (z - a(t) x0_hat) / s(t).
    ``generator`` is accepted for the shared signature and unused (a ``pin`` may draw from it).
    """
    ts = time_grid(steps, t_start, t_end, grid, schedule)
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


def sample_dpmpp_2m(denoiser: Denoiser, schedule: TanDSchedule, z_start: torch.Tensor, steps: int, *,
                    generator: torch.Generator | None = None, t_start: float = 1.0, t_end: float = 0.05,
                    self_condition: bool = True, pin: Pin | None = None, grid: str = "uniform"
                    ) -> Iterator[Step]:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): the probability-flow ODE solved in half-log-SNR time
    lambda = log(a / s) with the data prediction x0_hat, second order from the previous step's x0_hat.

    With h = lambda(t_next) - lambda(t) and r = h_prev / h:

        D      = x0_hat                                      (first step: DDIM)
        D      = (1 + 1 / (2r)) x0_hat - 1 / (2r) x0_prev    (after)
        z_next = s(t_next) / s(t) z - a(t_next) (exp(-h) - 1) D

    The first step is DDIM's. From t = 1 (a = 0: lambda is -inf, about -38 in float64) the first h is
    so large that the second step's correction 1 / (2r) is ~0 too; every later step is second order. One denoiser call per step, as the
    other samplers. ``generator`` is accepted for the shared signature and unused.
    """
    ts = time_grid(steps, t_start, t_end, grid, schedule)
    half_lam = (0.5 * schedule.log_snr(ts)).tolist()                 # lambda_DPM = log(a / s) per time
    z, x0, x0_prev, h_prev = z_start, None, None, None
    for i in range(steps):
        t, t_next = ts[i], ts[i + 1]
        x0 = denoiser(z, _batch_t(t, z), x0 if self_condition else None)
        h = half_lam[i + 1] - half_lam[i]                             # > 0 (inf from t = 1)
        D = x0
        if x0_prev is not None and math.isfinite(h_prev):
            k = 0.5 * h / h_prev                                      # 1 / (2 r)
            D = (1.0 + k) * x0 - k * x0_prev
        s_ratio = float(schedule.sigma(t_next)) / float(schedule.sigma(t))
        z = s_ratio * z - float(schedule.alpha(t_next)) * math.expm1(-h) * D
        if pin is not None:
            z = pin(z, i, float(t_next))
        x0_prev, h_prev = x0, h
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


def end_on_x0(run: Iterator[Step], steps: int, pin: Pin | None = None) -> Iterator[Step]:
    """``SamplingConfig.final_x0``: the last Step's state becomes its x0 estimate (a jump from t_end to
    t = 0), with ``pin`` applied again so that infill's kept positions stay the text's own latents."""
    for step in run:
        if step.i == steps - 1:
            z = step.x0_hat if pin is None else pin(step.x0_hat, step.i, 0.0)
            step = Step(step.i, 0.0, z, step.x0_hat)
        yield step


SAMPLERS = {"sde": sample_euler_maruyama, "ddim": sample_ddim, "dpm2m": sample_dpmpp_2m}
"""The samplers by name: what ``SamplingConfig.sampler`` and every task's ``sampler=`` take."""

SAMPLER_LABELS = {"sde": "SDE (Euler-Maruyama, the paper's default)", "ddim": "DDIM (deterministic)",
                  "dpm2m": "DPM-Solver++ 2M (deterministic, second order)"}
"""Each sampler's name as a person reads it (the app's choices)."""


def get_sampler(name: str):
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name]
