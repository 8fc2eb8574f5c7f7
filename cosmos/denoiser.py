"""The latent denoiser: a Llama-style bidirectional transformer predicting x0 (method: "Diffusion model").

Contract (design.md): ``denoiser(z_t, t, self_cond) -> x0_hat`` with z_t, self_cond, x0_hat of shape
(B, N, D) in *normalised* latent space and t of shape (B,) in [0, 1]. The per-(position, dim)
latent statistics live here as buffers so a denoiser checkpoint carries its own normalisation.

Prompt conditioning (method: "Conditional tasks": a transformer over the source and cross-attention
in every block; classifier-free guidance by dropping the source). With ``source_dim`` set, the
denoiser also takes ``source`` (B, S, source_dim), the frozen encoder's (normalised) token features of
the prompt, and ``source_mask`` (B, S). A row without any source token (mask all False), or
``source=None``, reads a learned *null source* instead: the unconditional branch of guidance.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from torch import nn

from .config import DenoiserConfig, saved_dict
from .layers import Attention, Norm, SwiGLU, rms_norm, rope_tables, timestep_features


def norm_factory(cfg: DenoiserConfig) -> Norm:
    """The config's RMSNorm (kind and eps), as a width -> module factory."""
    return functools.partial(rms_norm, kind=cfg.norm_kind, eps=cfg.norm_eps)


class SourceStates(NamedTuple):
    """The encoded source that every block's cross-attention reads."""

    states: torch.Tensor   # (B, S, D)
    mask: torch.Tensor     # (B, S) bool, True = attend; never all False in a row


class DenoiserBlock(nn.Module):
    """Pre-RMSNorm bidirectional self-attention (RoPE optional), then, in a conditional denoiser,
    pre-RMSNorm cross-attention from the latents to the source states, then pre-RMSNorm SwiGLU.
    Also the source encoder's block (no RoPE, no cross-attention, a key padding mask)."""

    def __init__(self, cfg: DenoiserConfig, cross_attention: bool = False):
        super().__init__()
        norm = norm_factory(cfg)
        self.attn_norm = norm(cfg.latent_dim)
        self.attn = Attention(cfg.latent_dim, cfg.head_dim, qk_norm=False)
        # unconditional blocks have no cross-attention weights at all (their checkpoints are unchanged)
        self.cross_norm = norm(cfg.latent_dim) if cross_attention else None
        self.cross_attn = Attention(cfg.latent_dim, cfg.head_dim, qk_norm=False) if cross_attention else None
        self.ffn_norm = norm(cfg.latent_dim)
        self.ffn = SwiGLU(cfg.latent_dim, cfg.ffn_width)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                key_mask: torch.Tensor | None = None, source: SourceStates | None = None) -> torch.Tensor:
        h = self.attn_norm(x)                       # (B, T, D)
        x = x + self.attn(h, h, key_mask, rope=rope)
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.cross_norm(x), source.states, source.mask)  # queries: latents
        return x + self.ffn(self.ffn_norm(x))


class SourceEncoder(nn.Module):
    """Prompt features (B, S, source_dim) -> source states (B, S, D), plus the learned null source.

    Linear(source_dim -> D), ``source_layers`` bidirectional blocks, RMSNorm. The frozen encoder's
    features already carry token positions, so no position embedding is added here.
    """

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        D = cfg.latent_dim
        self.proj = nn.Linear(cfg.source_dim, D, bias=False)
        self.blocks = nn.ModuleList(DenoiserBlock(cfg) for _ in range(cfg.source_layers))
        self.norm = norm_factory(cfg)(D)
        self.null = nn.Parameter(torch.randn(D) * 0.02)  # (D,) the "no prompt" source, one token wide

    def forward(self, source: torch.Tensor | None, source_mask: torch.Tensor | None,
                batch_size: int) -> SourceStates:
        if source is None:                                          # every row unconditional
            states = self.null.expand(batch_size, 1, -1)            # (B, 1, D)
            return SourceStates(states, torch.ones(batch_size, 1, dtype=torch.bool, device=states.device))
        empty = ~source_mask.any(dim=1)                             # (B,) rows that read the null source
        # an empty row attends to its first position only (never to nothing: that would give NaN);
        # that position is then overwritten with the null source below
        mask = source_mask.clone()
        mask[:, 0] |= empty
        h = self.proj(source)                                       # (B, S, D)
        for block in self.blocks:
            h = block(h, key_mask=mask)
        h = self.norm(h)
        first = torch.where(empty[:, None], self.null.to(h.dtype), h[:, 0])  # (B, D)
        return SourceStates(torch.cat([first[:, None], h[:, 1:]], dim=1), mask)


class CosmosDenoiser(ModelMixin, ConfigMixin):
    """x0-prediction transformer on (B, N, D) latents with U-Net long skips.

    Per block i, before the block: h += Linear_i(SiLU(time_mlp(t))) + Linear_i(self_cond).
    The official code's denoiser is this one with its config values (``DenoiserConfig``'s brackets).
    Output block j (0-based) first adds the state saved before input block (L/2 - 1 - j).
    No input/output projection: the transformer works at the latent width, ending in RMSNorm.
    Conditional (``source_dim`` set): a :class:`SourceEncoder` and cross-attention in every block.
    """

    config_name = "config.json"

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        values = saved_dict(config)
        if not config.conditional:  # the config.json of before prompts existed: older loaders read it
            for name in ("source_dim", "source_layers", "source_max_length"):
                del values[name]
        self.register_to_config(**values)
        self.cfg = config
        D, N = config.latent_dim, config.num_latents
        self.register_buffer("latent_mean", torch.zeros(N, D))  # (N, D) set from data
        self.register_buffer("latent_std", torch.ones(N, D))
        H = config.time_hidden or D
        self.time_mlp = nn.Sequential(nn.Linear(config.time_embed_dim, H), nn.SiLU(), nn.Linear(H, D))
        self.time_proj = nn.ModuleList(nn.Linear(D, D) for _ in range(config.num_layers))
        self.cond_proj = (nn.ModuleList(nn.Linear(D, D, bias=config.self_cond_bias) for _ in range(config.num_layers))
                          if config.self_condition else None)
        self.blocks = nn.ModuleList(DenoiserBlock(config, cross_attention=config.conditional)
                                    for _ in range(config.num_layers))
        self.final_norm = norm_factory(config)(D)
        self.source_encoder = SourceEncoder(config) if config.conditional else None

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

    # --- source (prompt) -----------------------------------------------------------------------
    def encode_source(self, source: torch.Tensor | None, source_mask: torch.Tensor | None = None,
                      batch_size: int | None = None) -> SourceStates:
        """Source features (B, S, source_dim) and mask (B, S) -> the states cross-attention reads.

        ``source=None`` gives the null source for ``batch_size`` rows; rows whose mask is all False
        get it too (classifier-free guidance's unconditional rows, dropped sources in training).
        Sampling encodes once and passes the result as ``source_states`` at every step.
        """
        if self.source_encoder is None:
            raise ValueError("this denoiser is unconditional (source_dim is None): it takes no source")
        if source is None:
            if batch_size is None:
                raise ValueError("encode_source(None) needs batch_size")
            return self.source_encoder(None, None, batch_size)
        if source.ndim != 3 or source.shape[-1] != self.cfg.source_dim:
            raise ValueError(f"source must have shape (B, S, {self.cfg.source_dim}), got {tuple(source.shape)}")
        if source_mask is None:
            source_mask = torch.ones(source.shape[:2], dtype=torch.bool, device=source.device)
        elif source_mask.shape != source.shape[:2]:
            raise ValueError(f"source_mask must have shape {tuple(source.shape[:2])}, got {tuple(source_mask.shape)}")
        return self.source_encoder(source, source_mask.bool(), source.shape[0])

    # --- x0 prediction -----------------------------------------------------------------------
    def time_embedding(self, t: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """t (B,) -> the time MLP's output (B, D), before the SiLU that every block's projection reads."""
        cfg = self.cfg
        features = timestep_features(t, cfg.time_embed_dim, cfg.time_max_period, cfg.time_scale)  # (B, time_embed_dim)
        return self.time_mlp(features.to(dtype))

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, self_cond: torch.Tensor | None = None,
                source: torch.Tensor | None = None, source_mask: torch.Tensor | None = None, *,
                source_states: SourceStates | None = None) -> torch.Tensor:
        """z_t: (B, N, D) noisy normalised latents; t: (B,) in [0, 1]; self_cond: (B, N, D) or None.

        Conditional denoisers only: ``source`` (B, S, source_dim) with ``source_mask`` (B, S) (None =
        all tokens; an all-False row = no prompt), or ``source_states`` from :meth:`encode_source`;
        neither = the null source (unconditional) for every row.
        """
        B, N, D = z_t.shape
        if t.ndim == 0:
            t = t.expand(B)
        if self.source_encoder is None:
            if source is not None or source_states is not None:
                raise ValueError("this denoiser is unconditional (source_dim is None): it takes no source")
        elif source_states is None:
            source_states = self.encode_source(source, source_mask, batch_size=B)
        if source_states is not None and source_states.states.shape[0] != B:
            raise ValueError(f"source has {source_states.states.shape[0]} rows but z_t has {B}")
        temb = F.silu(self.time_embedding(t, z_t.dtype))   # (B, D)
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
            x = block(x, rope, source=source_states)
        return self.final_norm(x)                          # x0_hat: (B, N, D)
