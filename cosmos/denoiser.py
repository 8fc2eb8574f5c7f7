"""The latent denoiser: a Llama-style bidirectional transformer predicting x0 (method: "Diffusion model").

Contract (design.md): ``denoiser(z_t, t, self_cond) -> x0_hat`` with z_t, self_cond, x0_hat of shape
(B, N, D) in *normalised* latent space and t of shape (B,) in [0, 1]. The per-(position, dim)
latent statistics live here as buffers so a denoiser checkpoint carries its own normalisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from torch import nn

from .config import DenoiserConfig, to_dict
from .layers import Attention, SwiGLU, rope_tables, timestep_features


class DenoiserBlock(nn.Module):
    """Pre-RMSNorm bidirectional self-attention with RoPE, then pre-RMSNorm SwiGLU."""

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.latent_dim, eps=1e-6)
        self.attn = Attention(cfg.latent_dim, cfg.head_dim, qk_norm=False)
        self.ffn_norm = nn.RMSNorm(cfg.latent_dim, eps=1e-6)
        self.ffn = SwiGLU(cfg.latent_dim, cfg.ffn_width)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        h = self.attn_norm(x)                       # (B, N, D)
        x = x + self.attn(h, h, rope=rope)
        return x + self.ffn(self.ffn_norm(x))


class CosmosDenoiser(ModelMixin, ConfigMixin):
    """x0-prediction transformer on (B, N, D) latents with U-Net long skips.

    Per block i, before the block: h += Linear_i(SiLU(time_mlp(t))) + Linear_i(self_cond).
    Output block j (0-based) first adds the state saved before input block (L/2 - 1 - j).
    No input/output projection: the transformer works at the latent width, ending in RMSNorm.
    """

    config_name = "config.json"

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.register_to_config(**to_dict(config))
        self.cfg = config
        D, N = config.latent_dim, config.num_latents
        self.register_buffer("latent_mean", torch.zeros(N, D))  # (N, D) set from data
        self.register_buffer("latent_std", torch.ones(N, D))
        self.time_mlp = nn.Sequential(nn.Linear(config.time_embed_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.time_proj = nn.ModuleList(nn.Linear(D, D) for _ in range(config.num_layers))
        self.cond_proj = (nn.ModuleList(nn.Linear(D, D, bias=False) for _ in range(config.num_layers))
                          if config.self_condition else None)
        self.blocks = nn.ModuleList(DenoiserBlock(config) for _ in range(config.num_layers))
        self.final_norm = nn.RMSNorm(D, eps=1e-6)

    # --- latent normalisation ----------------------------------------------------------------
    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        shape = tuple(self.latent_mean.shape)
        if mean.shape != shape or std.shape != shape or not bool((std > 0).all()):
            raise ValueError(f"latent stats must be two {shape} tensors with std > 0")
        self.latent_mean.copy_(mean)
        self.latent_std.copy_(std)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Autoencoder latents (B, N, D) -> zero-mean unit-variance diffusion space."""
        return (z - self.latent_mean) / self.latent_std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std + self.latent_mean

    # --- x0 prediction -----------------------------------------------------------------------
    def forward(self, z_t: torch.Tensor, t: torch.Tensor, self_cond: torch.Tensor | None = None) -> torch.Tensor:
        """z_t: (B, N, D) noisy normalised latents; t: (B,) in [0, 1]; self_cond: (B, N, D) or None."""
        B, N, D = z_t.shape
        if t.ndim == 0:
            t = t.expand(B)
        temb = F.silu(self.time_mlp(timestep_features(t, self.cfg.time_embed_dim).to(z_t.dtype)))  # (B, D)
        if self_cond is None:
            self_cond = torch.zeros_like(z_t)
        rope = rope_tables(N, self.cfg.head_dim, self.cfg.rope_theta, device=z_t.device)
        half = self.cfg.num_layers // 2
        skips: list[torch.Tensor] = []
        x = z_t
        for i, block in enumerate(self.blocks):
            if i < half:
                skips.append(x)
            else:
                x = x + skips.pop()                        # U-Net long skip
            x = x + self.time_proj[i](temb)[:, None, :]     # (B, 1, D) broadcast over positions
            if self.cond_proj is not None:
                x = x + self.cond_proj[i](self_cond)
            x = block(x, rope)
        return self.final_norm(x)                          # x0_hat: (B, N, D)
