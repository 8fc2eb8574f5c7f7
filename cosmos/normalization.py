"""Normalisation statistics computed from data (method: "Frozen encoder", "Latent normalisation").

Two uses, one accumulator:
- encoder features: per-dimension mean/std over non-pad tokens -> shape (D,), saved with the
  autoencoder; normalised features are both the compressor input and the MSE alignment target;
- latents: per-(position, dim) mean/std over texts -> shape (N, D), saved with the denoiser.
"""

from __future__ import annotations

import torch


class MomentAccumulator:
    """Streaming mean and variance over the leading axis of ``(M, *shape)`` samples, in float64."""

    def __init__(self, shape: tuple[int, ...]):
        self.count = 0
        self.total = torch.zeros(shape, dtype=torch.float64)
        self.total_sq = torch.zeros(shape, dtype=torch.float64)

    def update(self, samples: torch.Tensor) -> None:
        """samples: (M, *shape); rows are individual observations (e.g. non-pad token features)."""
        x = samples.detach().to("cpu", torch.float64)
        if x.shape[1:] != self.total.shape:
            raise ValueError(f"expected samples of shape (M, {tuple(self.total.shape)}), got {tuple(x.shape)}")
        self.count += x.shape[0]
        self.total += x.sum(0)
        self.total_sq += (x * x).sum(0)

    def mean_std(self, min_var: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (float32); variance floored at ``min_var`` so near-constant dims stay finite."""
        if self.count < 2:
            raise ValueError(f"need at least 2 observations for statistics, got {self.count}")
        mean = self.total / self.count
        var = (self.total_sq / self.count - mean * mean) * self.count / (self.count - 1)
        return mean.float(), var.clamp_min(min_var).sqrt().float()
