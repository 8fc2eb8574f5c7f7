"""Checks the pipeline makes before it runs: do its components fit together, are a task's arguments valid.
Each message says what was expected."""

from __future__ import annotations

import math
import warnings

from .config import ConfigError
from .encoder import FrozenEncoder, TokenizedBatch


class TextTruncatedWarning(UserWarning):
    """A text had more tokens than the autoencoder's length L (or a prompt more than the denoiser's
    ``source_max_length``) and was cut to that length."""


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; integral floats are accepted, bools are not."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high if high is not None else 'inf'}], got {value}")
    return value


def check_strength(strength) -> float:
    """An SDEdit strength: a finite number in (0, 1]."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength) \
            or not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be a number in (0, 1], got {strength!r}")
    return float(strength)


def warn_truncated(batch: TokenizedBatch, what: str, unit: str) -> None:
    """A TextTruncatedWarning naming the rows of ``batch`` that were cut to its length."""
    cut = [i for i, t in enumerate(batch.truncated) if t]
    if cut:
        warnings.warn(TextTruncatedWarning(
            f"{len(cut)} {what} (index {cut[:5]}{'...' if len(cut) > 5 else ''}) exceed the model's "
            f"{batch.max_length} {unit} and were truncated to {batch.max_length}"), stacklevel=3)


def check_compatible(encoder: FrozenEncoder, autoencoder, denoiser=None) -> None:
    """Raise ConfigError unless the autoencoder was trained on ``encoder``'s features and tokenizer, and the
    denoiser (if any) on the autoencoder's latent shape (and, prompt-conditioned, on the encoder's width)."""
    ae = autoencoder.cfg
    expected = {"hidden_size": encoder.hidden_size, "vocab_size": encoder.vocab_size, **encoder.special_token_ids()}
    wrong = [f"{k}: autoencoder {getattr(ae, k)} vs encoder {v}" for k, v in expected.items() if getattr(ae, k) != v]
    if wrong:
        raise ConfigError(f"the autoencoder was trained for another encoder than {encoder.name_or_path!r}: "
                          + "; ".join(wrong))
    if denoiser is None:
        return
    if (denoiser.cfg.latent_dim, denoiser.cfg.num_latents) != (ae.latent_width, ae.num_latents):
        raise ConfigError(f"denoiser works on latents ({denoiser.cfg.num_latents}, {denoiser.cfg.latent_dim}) "
                          f"but the autoencoder makes ({ae.num_latents}, {ae.latent_width})")
    if denoiser.cfg.conditional and denoiser.cfg.source_dim != encoder.hidden_size:
        raise ConfigError(f"the denoiser reads prompt features of width {denoiser.cfg.source_dim} but the encoder "
                          f"{encoder.name_or_path!r} makes width {encoder.hidden_size}: the denoiser was trained "
                          "with another encoder. Load it with the encoder it was trained with, or re-export "
                          "the checkpoint from one training run (`python -m train.export`)")
