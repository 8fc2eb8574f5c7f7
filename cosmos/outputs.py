"""What the pipeline's tasks return, and what it says about itself (``CosmosPipeline.summary``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class GenerationOutput:
    texts: list[str]
    latents: torch.Tensor   # (B, N, d) autoencoder-space latents that were decoded into ``texts``


@dataclass
class TrajectoryStep:
    i: int                  # 0-based step index
    num_steps: int
    t: float                # time of z_t after this step
    z_t: torch.Tensor       # (B, N, d) state, normalised diffusion space
    x0_hat: torch.Tensor    # (B, N, d) x0 estimate, autoencoder space
    token_ids: torch.Tensor  # (B, L) decoded x0 estimate (tokenizer ids, before cutting at [SEP])
    texts: list[str]        # decoded x0 estimate
    sample_texts: list[str] | None = None  # last step only: the final sample, as generate() returns it
    sample_latents: torch.Tensor | None = None  # last step only: (B, N, d) final latents, autoencoder space
    sigma: float = 0.0      # noise level σ(t) = s(t) / a(t) of z_t after this step (method, Eq. 3)
    sample_token_ids: torch.Tensor | None = None  # last step only: (B, L) ids the final sample's texts were made from


@dataclass
class InfillOutput:
    texts: list[str]        # one per variant: kept chunks verbatim, the rest sampled
    latents: torch.Tensor   # (B, N, d) autoencoder-space latents (kept positions: the text's own)
    token_ids: torch.Tensor  # (B, L) tokenizer ids the texts were made from
    kept: list[int]         # the chunk indices that were kept


@dataclass
class InterpolationOutput:
    weights: list[float]    # position along the path: 0 = text_a, 1 = text_b
    texts: list[str]
    latents: torch.Tensor   # (k, N, d)


@dataclass(frozen=True)
class PipelineSummary:
    """What is loaded, in numbers and words: the About tab's table and the benchmarks' model description."""

    encoder: str                       # frozen encoder name or path
    encoder_width: int                 # D
    vocab_size: int                    # the tokenizer's vocabulary
    max_length: int                    # L tokens per text
    num_latents: int                   # N
    latent_width: int                  # d
    autoencoder: str                   # the compressor / decoder architecture in words
    denoiser: str | None               # the denoiser architecture in words; None without one
    parameters: dict[str, int]         # per component: encoder, compressor, decoder, head, denoiser (0 if absent)
    sampler: str                       # default sampler name (``cosmos.sampling.SAMPLERS``)
    steps: int                         # default sampler steps
    time_grid: str                     # default time grid (``cosmos.sampling.TIME_GRIDS``)
    t_end: float                       # sampling stops at this time
    schedule_d: float                  # the tan-d schedule's d
    supports_prompts: bool
    prompt_max_tokens: int | None      # prompt tokens read ([CLS] and [SEP] included); None: no prompts
    guidance_scale: float              # default classifier-free guidance weight (prompts only)
    configs: dict[str, dict]           # autoencoder / denoiser / schedule / sampling configs as JSON values

    @property
    def compression(self) -> int:
        """L / N: how many token vectors one latent replaces."""
        return self.max_length // self.num_latents
