"""Infill: keep some chunks of a text, let diffusion rewrite the rest (``CosmosPipeline.infill``).

With the chunk-local compressor, latent i is a function of tokens [i r, (i + 1) r) only (r = L / N;
``cosmos.autoencoder``), so a text's latents can be split by position: the kept chunks' latents are known,
the others are sampled. Sampling pins the kept latents by replacement, as RePaint (Lugmayr et al. 2022)
does for image inpainting: after every sampler step at time t, the kept positions of the state are set
to the text's own latents noised to t, a(t) z0 + s(t) eps, so the denoiser always sees them at the noise
level of the rest; at the last step they are set to z0 itself. No extra training: a denoiser trained
for unconditional (or prompted) generation infills. The kept chunks' tokens are the text's own tokens
in the output; the rewritten chunks are decoded from the sampled latents.

A Perceiver compressor's latents each attend to every token, so no latent belongs to a span: infill is
refused there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .schedule import TanDSchedule


@dataclass(frozen=True)
class TextChunk:
    """The tokens one latent owns: positions [start, end) of the tokenised row ([CLS] at 0)."""

    index: int
    start: int
    end: int
    tokens: list[str]       # wordpieces, without [CLS] / [SEP] / [PAD]
    in_text: bool           # False for a chunk of padding only (after the text's [SEP])
    ends_text: bool = False  # True for the chunk that holds the text's [SEP]: a decoded text stops there


def keep_mask(keep, num_latents: int, chunk_size: int, text_tokens: int) -> torch.Tensor:
    """(N,) bool: True where the chunk is kept. ``keep`` lists chunk indices (ints) or token spans
    ``(start, end)`` of row positions ([CLS] is 0; a span must lie inside the text's ``text_tokens``
    positions, [SEP] included), each mapped to the chunks that hold it."""
    if isinstance(keep, (str, bytes)) or not isinstance(keep, (list, tuple)):
        raise ValueError(f"keep must be a list of chunk indices or (start, end) token spans, got {keep!r}")
    mask = torch.zeros(num_latents, dtype=torch.bool)
    for item in keep:
        if isinstance(item, bool):
            raise ValueError(f"keep: {item!r} is not a chunk index or a (start, end) token span")
        if isinstance(item, int):
            if not 0 <= item < num_latents:
                raise ValueError(f"keep: chunk {item} is out of range; this model has chunks 0-{num_latents - 1}")
            mask[item] = True
        elif isinstance(item, (list, tuple)) and len(item) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) for v in item):
            start, end = item
            if not 0 <= start < end <= text_tokens:
                raise ValueError(f"keep: token span {tuple(item)} is outside the text's tokens [0, {text_tokens}) "
                                 "(or empty)")
            mask[start // chunk_size:-(-end // chunk_size)] = True
        else:
            raise ValueError(f"keep: {item!r} is not a chunk index or a (start, end) token span")
    return mask


def pinning(schedule: TanDSchedule, z0: torch.Tensor, kept: torch.Tensor, steps: int,
            generator: torch.Generator | None):
    """The sampler's ``pin(z, i, t)`` for replacement conditioning: kept positions (``kept``, (N,) bool) of
    the state set to z0 (B, N, d) noised to time t; after the last step, to z0 itself."""
    where = kept.to(z0.device)[None, :, None]                           # (1, N, 1)

    def pin(z: torch.Tensor, i: int, t: float) -> torch.Tensor:
        if i == steps - 1:
            return torch.where(where, z0, z)
        noise = torch.randn(z0.shape, generator=generator).to(z0.device, z0.dtype)
        t_ = torch.tensor(t)
        return torch.where(where, float(schedule.alpha(t_)) * z0 + float(schedule.sigma(t_)) * noise, z)

    return pin
