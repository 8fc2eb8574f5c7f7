"""The tan-d variance-preserving noise schedule (method: "Diffusion model", forward process).

    z_t = a(t) z0 + s(t) eps,   a(t) = 1 / sqrt(1 + d^2 tan^2(pi t / 2)),   s(t) = sqrt(1 - a(t)^2)

so SNR(t) = a^2 / s^2 = 1 / (d^2 tan^2(pi t / 2)): d shifts the whole curve (larger d = noisier).
The matching VP-SDE  dz = -1/2 beta(t) z dt + sqrt(beta(t)) dW  has beta(t) = -d log a(t)^2 / dt:

    beta(t) = pi d^2 tan(pi t / 2) (1 + tan^2(pi t / 2)) / (1 + d^2 tan^2(pi t / 2)).

beta(t) -> infinity as t -> 1, so it is evaluated at min(t, beta_t_max) (0.95 in the reference code);
otherwise the first Euler-Maruyama steps from t = 1 would explode.

a, s and beta are computed in float64 and rounded to float32; ``ScheduleConfig.compute_dtype =
"float32"`` computes them in single precision instead, as the official code does (its s(t) is exactly 0
for t below about 1e-4, and its a(1) is 8.7e-9, from tan of float32's pi / 2), which the converted
released checkpoints use so that they sample number for number as the official code.
"""

from __future__ import annotations

import math

import torch

from .config import ScheduleConfig


class TanDSchedule:
    """Pure tensor functions of t (any shape, float); all return float32 tensors of t's shape."""

    def __init__(self, config: ScheduleConfig | None = None):
        self.config = config or ScheduleConfig()
        self.d = float(self.config.d)
        self.dtype = torch.float32 if self.config.compute_dtype == "float32" else torch.float64

    def _tan(self, t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.tan(0.5 * math.pi * t.to(dtype or self.dtype))

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        tan = self._tan(t)
        return (1.0 / torch.sqrt(1.0 + self.d ** 2 * tan ** 2)).float()

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        a = self.alpha(t).to(self.dtype)
        return torch.sqrt((1.0 - a * a).clamp_min(0.0)).float()

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        tan = self._tan(t)
        return (1.0 / (self.d ** 2 * tan ** 2)).float()

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """lambda(t) = log(a^2 / s^2) = -2 log(d tan(pi t / 2)), float64; -inf at t = 1, +inf at t = 0."""
        return -2.0 * torch.log(self.d * self._tan(t, torch.float64))

    def time_at_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`log_snr`: t = (2 / pi) atan(exp(-lambda / 2) / d), float64."""
        return (2.0 / math.pi) * torch.atan(torch.exp(-0.5 * lam.double()) / self.d)

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        tan = self._tan(t.clamp(max=self.config.beta_t_max))
        return (math.pi * self.d ** 2 * tan * (1.0 + tan ** 2) / (1.0 + self.d ** 2 * tan ** 2)).float()

    def add_noise(self, z0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """q(z_t | z0): z0, noise (B, N, D), t (B,) -> z_t (B, N, D)."""
        a = self.alpha(t).to(z0.dtype).view(-1, 1, 1)
        s = self.sigma(t).to(z0.dtype).view(-1, 1, 1)
        return a * z0 + s * noise

    def sample_training_times(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """t ~ U[t_min, 1] of shape (batch,)."""
        u = torch.rand(batch, generator=generator)
        return self.config.t_min + (1.0 - self.config.t_min) * u
