"""Prompts for a prompt-conditioned denoiser (method: "Conditional tasks"): checking a request, and the
features the denoiser cross-attends to.

A prompt's tokens (at most the denoiser's ``source_max_length``, [CLS] and [SEP] included) go through the
same frozen encoder and feature normalisation as the autoencoder's input; a batch is cut to its longest
prompt (the padding after it carries nothing). Training (``train.diffusion``, from cached features) and
sampling (``CosmosPipeline``) both go through :func:`prompt_features`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .autoencoder import CosmosAutoencoder
from .config import is_guidance_scale
from .encoder import as_text_list
from .validation import check_int


@dataclass
class PromptBatch:
    """Encoded prompts for one sampling run, one row per sample."""

    features: torch.Tensor  # (B, S, source_dim) normalised frozen-encoder features
    mask: torch.Tensor      # (B, S) bool, True on real tokens
    scale: float            # classifier-free guidance weight

    def rows(self, start: int, stop: int) -> "PromptBatch":
        return PromptBatch(self.features[start:stop], self.mask[start:stop], self.scale)


def longest_prompt(mask: torch.Tensor) -> int:
    """Tokens in the longest row of a (B, S) mask (at least 1)."""
    return max(1, int(mask.sum(1).max()))


def prompt_features(autoencoder: CosmosAutoencoder, features: torch.Tensor, mask: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw frozen-encoder features (B, S, D) and mask (B, S) -> normalised features and mask, both cut to the
    longest prompt."""
    width = longest_prompt(mask)
    return autoencoder.normalize_features(features[:, :width].float()), mask[:, :width]


def check_prompt_request(prompt, num, guidance_scale, default_scale: float, max_num: int | None = None
                         ) -> tuple[int, list[str] | None, float | None]:
    """Validate a task's ``prompt`` / ``num`` / ``guidance_scale``: (number of samples, prompt texts or None,
    guidance scale or None). A string gives ``num`` samples of it; a list one sample per prompt."""
    if prompt is None:
        if guidance_scale is not None:
            raise ValueError("guidance_scale applies to prompted generation only; give a prompt or leave "
                             "guidance_scale unset")
        return check_int("num", 1 if num is None else num, 1, max_num), None, None
    scale = default_scale if guidance_scale is None else guidance_scale
    if not is_guidance_scale(scale):
        raise ValueError(f"guidance_scale must be a finite number >= 0, got {scale!r}")
    if isinstance(prompt, (list, tuple)):
        if not prompt:
            raise ValueError("prompt is an empty list; give at least one prompt (or None for no prompt)")
        if num is not None and check_int("num", num, 1) != len(prompt):
            raise ValueError(f"num ({num}) must equal the number of prompts ({len(prompt)}) or be left unset: "
                             "a list of prompts gives one sample per prompt")
        if max_num is not None and len(prompt) > max_num:
            raise ValueError(f"prompt: at most {max_num} prompts at a time here, got {len(prompt)}")
        num = check_int("num", len(prompt), 1, max_num)
    else:
        num = check_int("num", 1 if num is None else num, 1, max_num)
    try:
        texts = as_text_list(prompt)
    except TypeError as err:
        raise ValueError(f"prompt must be a string or a list of strings ({err})") from None
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    if blank:
        raise ValueError(f"prompt must not be empty or blank (prompt {blank[0]} is {texts[blank[0]]!r})")
    return num, texts, float(scale)
