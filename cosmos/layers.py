"""Building blocks shared by the autoencoder and the denoiser.

Everything is bias-free by default, as in the paper's blocks (method: "Compressor", "Diffusion model").
A few switches let the same blocks be the official Cosmos code's variants (its RMSNorm, FFN biases,
separate K/V projections per stream), which ``cosmos.official`` needs to load the released checkpoints.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .config import NORM_KINDS   # torch's x / sqrt(mean(x^2) + eps), or the official code's x / max(rms(x), eps)


class ClampedRMSNorm(nn.Module):
    """x / max(||x|| / sqrt(D), eps) * weight: the RMSNorm of the official Cosmos code.

    Differs from torch's ``nn.RMSNorm`` only in where eps enters (a floor on the RMS instead of a term
    under the square root); the parameter has the same name and shape (``weight``, (D,)).
    """

    def __init__(self, width: int, eps: float):
        super().__init__()
        self.eps = eps
        self.scale = width ** -0.5
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale   # (..., 1)
        return x / rms.clamp(min=self.eps) * self.weight


def rms_norm(width: int, kind: str = "mean-square", eps: float = 1e-6) -> nn.Module:
    """An RMSNorm over the last dimension of the given kind (``NORM_KINDS``)."""
    if kind == "mean-square":
        return nn.RMSNorm(width, eps=eps)
    if kind == "clamped":
        return ClampedRMSNorm(width, eps)
    raise ValueError(f"unknown norm kind {kind!r}; choose one of {list(NORM_KINDS)}")


Norm = Callable[[int], nn.Module]
"""A norm factory: width -> module (``functools.partial(rms_norm, kind=..., eps=...)``)."""


class Attention(nn.Module):
    """Multi-head attention, queries from one stream and keys/values from another.

    QK-norm (RMSNorm over each head's queries and keys) keeps the logits bounded, which the paper's
    compressor and decoder use. Optional rotary position embedding (RoPE) for the denoiser.
    ``separate_kv``: in :meth:`read`, the query stream and the other stream have their own K/V
    projections (``to_kv`` and ``to_kv_other``), as in the official code; otherwise one projection.
    """

    def __init__(self, width: int, head_dim: int, *, qk_norm: bool = True, norm: Norm | None = None,
                 separate_kv: bool = False):
        super().__init__()
        norm = norm or functools.partial(rms_norm, kind="mean-square", eps=1e-6)
        self.num_heads = width // head_dim
        self.head_dim = head_dim
        self.to_q = nn.Linear(width, width, bias=False)
        self.to_kv = nn.Linear(width, 2 * width, bias=False)
        self.to_kv_other = nn.Linear(width, 2 * width, bias=False) if separate_kv else None
        self.to_out = nn.Linear(width, width, bias=False)
        self.q_norm = norm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = norm(head_dim) if qk_norm else nn.Identity()

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)

    def forward(
        self,
        queries: torch.Tensor,                 # (B, Tq, C)
        context: torch.Tensor,                 # (B, Tk, C)
        key_mask: torch.Tensor | None = None,  # (B, Tk) bool, True = attend
        bias: torch.Tensor | None = None,      # (Tq, Tk) float added to the attention logits
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,  # cos, sin: (Tq, hd/2), Tq == Tk
    ) -> torch.Tensor:
        return self._attend(self.to_q(queries), self.to_kv(context), key_mask, bias, rope)

    def read(
        self,
        queries: torch.Tensor,                 # (B, Tq, C), already normalised
        other: torch.Tensor,                   # (B, To, C), already normalised
        *,
        other_first: bool,                     # keys are [other ; queries] (True) or [queries ; other]
        key_mask: torch.Tensor | None = None,  # (B, Tq + To) bool in key order, True = attend
        bias: torch.Tensor | None = None,      # (Tq, Tq + To) in key order
    ) -> torch.Tensor:
        """The Perceiver's attention: queries attend to themselves and another stream -> (B, Tq, C)."""
        if self.to_kv_other is None:
            context = torch.cat([other, queries] if other_first else [queries, other], dim=1)
            return self(queries, context, key_mask, bias)
        own, theirs = self.to_kv(queries), self.to_kv_other(other)      # (B, T, 2C) each
        kv = torch.cat([theirs, own] if other_first else [own, theirs], dim=1)
        return self._attend(self.to_q(queries), kv, key_mask, bias, None)

    def _attend(self, q: torch.Tensor, kv: torch.Tensor, key_mask: torch.Tensor | None,
                bias: torch.Tensor | None, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """Projected queries (B, Tq, C) and keys/values (B, Tk, 2C) -> the output projection (B, Tq, C)."""
        q = self.q_norm(self._heads(q))                              # (B, H, Tq, hd)
        k, v = kv.chunk(2, dim=-1)
        k, v = self.k_norm(self._heads(k)), self._heads(v)           # (B, H, Tk, hd)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, Tk)
        if bias is not None:
            mask = bias.to(q.dtype)[None, None] if mask is None else \
                bias.to(q.dtype).masked_fill(~mask, float("-inf"))          # (B, 1, Tq, Tk)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)   # (B, H, Tq, hd)
        B, H, Tq, hd = out.shape
        return self.to_out(out.transpose(1, 2).reshape(B, Tq, H * hd))  # (B, Tq, C)


class GeluFeedForward(nn.Module):
    """LayerNorm -> Linear(C, mult C) -> GELU -> dropout -> Linear(mult C, C) (compressor/decoder FFN).

    The linear layers are bias-free unless ``bias`` (the official code's FFN has biases)."""

    def __init__(self, width: int, mult: int, dropout: float, bias: bool = False):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, mult * width, bias=bias), nn.GELU(),
            nn.Dropout(dropout), nn.Linear(mult * width, width, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SwiGLU(nn.Module):
    """Llama's gated FFN: W2 (SiLU(W1 x) * W3 x)."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.w13 = nn.Linear(width, 2 * hidden, bias=False)
        self.w2 = nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * up)


@functools.lru_cache(maxsize=32)
def rope_tables(length: int, head_dim: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables of rotary embeddings (Su et al. 2021), each (length, head_dim / 2).

    Cached: every sampler step of a run asks for the same tables. They are built outside inference mode
    (so a table first made while sampling can still be used by training's autograd) and never written to.
    """
    with torch.inference_mode(False), torch.no_grad():
        inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
        return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :hd/2], x[..., hd/2:]) of x: (B, H, T, hd) by the position angles."""
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.to(x.dtype)


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10000.0, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal features of continuous time t in [0, 1]: (B,) -> (B, dim) (Transformer / DDPM style).

    ``scale`` multiplies t first: 1000 puts it in DDPM's range of step indices (ours); the official code
    uses t itself (scale 1) with ``max_period`` 10."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = scale * t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)
