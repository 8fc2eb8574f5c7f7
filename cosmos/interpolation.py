"""Paths between two texts' latents (the Interpolate task): straight, spherical, or through noise space."""

from __future__ import annotations

import torch

INTERPOLATION_METHODS = {
    "slerp": "slerp (spherical, per latent vector)",
    "lerp": "lerp (straight line)",
    "noise": "noise space (DDIM-invert both ends, slerp the noises, denoise)",
}
"""Method name -> what it does; ``CosmosPipeline.interpolate(method=...)`` takes the names."""


def slerp(a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
    """Spherical interpolation along the last axis; falls back to lerp for (anti)parallel vectors."""
    a_unit = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b_unit = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    omega = torch.arccos((a_unit * b_unit).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    safe = so.abs() > 1e-6
    wa = torch.where(safe, torch.sin((1.0 - w) * omega) / so.where(safe, torch.ones_like(so)), 1.0 - w)
    wb = torch.where(safe, torch.sin(w * omega) / so.where(safe, torch.ones_like(so)), torch.full_like(so, w))
    return wa * a + wb * b


def path_weights(k: int) -> list[float]:
    """``k`` evenly spaced positions from 0 (first text) to 1 (second text)."""
    return [i / (k - 1) for i in range(k)]


def latent_path(a: torch.Tensor, b: torch.Tensor, weights: list[float], method: str) -> torch.Tensor:
    """Points (k, ...) on the ``lerp`` or ``slerp`` path from ``a`` to ``b`` (any equal shapes)."""
    if method == "lerp":
        return torch.stack([(1 - w) * a + w * b for w in weights])
    if method == "slerp":
        return torch.stack([slerp(a, b, w) for w in weights])
    raise ValueError(f"latent_path draws 'lerp' or 'slerp' paths, got {method!r}")
