"""CosmosPipeline: text <-> latents, generation, trajectories, interpolation and variations.

    text --tokenize--> ids (B, L) --frozen encoder--> features (B, L, D)
         --compressor--> latents z (B, N, d) --normalise--> diffusion space (B, N, d)
    noise --sampler + denoiser--> z --denormalise--> decoder --> logits (B, L, V) --argmax, cut at [SEP]--> text

A prompt-conditioned checkpoint (``pipe.supports_prompts``) also takes a prompt: its tokens
(at most ``source_max_length``) go through the same frozen encoder and feature normalisation as the
autoencoder's input, and the denoiser reads them through cross-attention, with classifier-free
guidance (``guidance_scale``) at sampling time (method: "Conditional tasks").

A pipeline folder (``save_pretrained`` / ``from_pretrained``):

    model_index.json            format version, schedule and sampler defaults
    autoencoder/config.json     + diffusion_pytorch_model.safetensors (feature stats, encoder id inside)
    denoiser/config.json        + diffusion_pytorch_model.safetensors (latent stats inside); optional
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from .autoencoder import CosmosAutoencoder
from .checkpoint import CheckpointError, load_component, read_json, resolve_pretrained, save_component
from .config import (FORMAT_VERSION, AutoencoderConfig, ConfigError, DenoiserConfig, SamplingConfig,
                     ScheduleConfig, config_from_dict, is_guidance_scale, to_dict)
from .denoiser import CosmosDenoiser
from .encoder import FrozenEncoder, TokenizedBatch, as_text_list
from .sampling import Step, get_sampler, guided, invert_ddim
from .schedule import TanDSchedule

INTERPOLATION_METHODS = ("lerp", "slerp", "noise")

ProgressCallback = Callable[[int, int], None]
"""Called after every sampler step with (steps done, steps in total) across all batch chunks."""


class TextTruncatedWarning(UserWarning):
    """A text had more tokens than the autoencoder's length L (or a prompt more than the denoiser's
    ``source_max_length``) and was cut to that length."""


@dataclass
class _Prompts:
    """Encoded prompts for one sampling run, one row per sample."""

    features: torch.Tensor  # (B, S, source_dim) normalised frozen-encoder features
    mask: torch.Tensor      # (B, S) bool, True on real tokens
    scale: float            # classifier-free guidance weight

    def rows(self, start: int, stop: int) -> "_Prompts":
        return _Prompts(self.features[start:stop], self.mask[start:stop], self.scale)


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


@dataclass
class InterpolationOutput:
    weights: list[float]    # position along the path: 0 = text_a, 1 = text_b
    texts: list[str]
    latents: torch.Tensor   # (k, N, d)


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high if high is not None else 'inf'}], got {value}")
    return value


def _warn_truncated(batch: TokenizedBatch, what: str, unit: str) -> None:
    """A TextTruncatedWarning naming the rows of ``batch`` that were cut to its length."""
    cut = [i for i, t in enumerate(batch.truncated) if t]
    if cut:
        warnings.warn(TextTruncatedWarning(
            f"{len(cut)} {what} (index {cut[:5]}{'...' if len(cut) > 5 else ''}) exceed the model's "
            f"{batch.max_length} {unit} and were truncated to {batch.max_length}"), stacklevel=3)


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


class CosmosPipeline:
    """Everything a user (or the app) calls. Methods run under ``torch.inference_mode``."""

    def __init__(self, encoder: FrozenEncoder, autoencoder: CosmosAutoencoder,
                 denoiser: CosmosDenoiser | None = None, schedule: ScheduleConfig | None = None,
                 sampling: SamplingConfig | None = None):
        ae = autoencoder.cfg
        expected = {"hidden_size": encoder.hidden_size, "vocab_size": encoder.vocab_size,
                    **encoder.special_token_ids()}
        wrong = [f"{k}: autoencoder {getattr(ae, k)} vs encoder {v}" for k, v in expected.items()
                 if getattr(ae, k) != v]
        if wrong:
            raise ConfigError(f"the autoencoder was trained for another encoder than {encoder.name_or_path!r}: "
                              + "; ".join(wrong))
        if denoiser is not None and (denoiser.cfg.latent_dim, denoiser.cfg.num_latents) != (ae.latent_width, ae.num_latents):
            raise ConfigError(f"denoiser works on latents ({denoiser.cfg.num_latents}, {denoiser.cfg.latent_dim}) "
                              f"but the autoencoder makes ({ae.num_latents}, {ae.latent_width})")
        if denoiser is not None and denoiser.cfg.conditional and denoiser.cfg.source_dim != encoder.hidden_size:
            raise ConfigError(f"the denoiser reads prompt features of width {denoiser.cfg.source_dim} but the encoder "
                              f"{encoder.name_or_path!r} makes width {encoder.hidden_size}: the denoiser was trained "
                              "with another encoder. Load it with the encoder it was trained with, or re-export "
                              "the checkpoint from one training run (`python -m train.export`)")
        self.encoder = encoder.eval()
        self.autoencoder = autoencoder.eval()
        self.denoiser = denoiser.eval() if denoiser is not None else None
        self.schedule = TanDSchedule(schedule)
        self.sampling = sampling or SamplingConfig()
        self.device = torch.device("cpu")

    # --- construction, saving, loading -------------------------------------------------------
    @classmethod
    def build(cls, autoencoder_config: AutoencoderConfig, denoiser_config: DenoiserConfig | None = None,
              schedule: ScheduleConfig | None = None, sampling: SamplingConfig | None = None,
              encoder: FrozenEncoder | None = None) -> "CosmosPipeline":
        """An untrained pipeline from configs. The denoiser's ``latent_dim``/``num_latents`` are
        taken from the autoencoder (they must agree)."""
        encoder = encoder or FrozenEncoder.from_pretrained(autoencoder_config.encoder)
        autoencoder = CosmosAutoencoder.for_encoder(encoder, autoencoder_config)
        denoiser = None
        if denoiser_config is not None:
            denoiser_config = dataclasses.replace(denoiser_config, latent_dim=autoencoder.cfg.latent_width,
                                                  num_latents=autoencoder.cfg.num_latents)
            denoiser = CosmosDenoiser(denoiser_config)
        return cls(encoder, autoencoder, denoiser, schedule, sampling)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, device: str | torch.device | None = None,
                        encoder: FrozenEncoder | None = None) -> "CosmosPipeline":
        """Load a pipeline folder or hub repo id; raises CheckpointError saying what is wrong."""
        folder = resolve_pretrained(name_or_path)
        index = read_json(folder / "model_index.json", "not a Cosmos pipeline folder (no model_index.json)")
        version = index.get("format_version")
        if version != FORMAT_VERSION:
            newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
            action = ("update this code (`git pull`) to a version that reads it, or re-export the checkpoint "
                      "with this version" if newer else "re-export it with this version (`python -m train.export`)")
            raise CheckpointError(f"{folder} was written in checkpoint format {version!r}; this version of "
                                  f"cosmos reads format {FORMAT_VERSION}: {action}.")
        sections = {name: index.get(name, {}) for name in ("schedule", "sampling", "components")}
        wrong = [name for name, value in sections.items() if not isinstance(value, dict)]
        if wrong:
            raise CheckpointError(f"{folder / 'model_index.json'}: section(s) {wrong} must be JSON objects")
        try:
            schedule = config_from_dict(ScheduleConfig, sections["schedule"], where="model_index.json schedule")
            sampling = config_from_dict(SamplingConfig, sections["sampling"], where="model_index.json sampling")
        except (ConfigError, TypeError) as err:
            raise CheckpointError(str(err)) from err
        autoencoder = load_component(CosmosAutoencoder, AutoencoderConfig, folder / "autoencoder")
        denoiser = None
        if sections["components"].get("denoiser"):
            denoiser = load_component(CosmosDenoiser, DenoiserConfig, folder / "denoiser")
        encoder = encoder or FrozenEncoder.from_pretrained(autoencoder.cfg.encoder)
        try:
            pipe = cls(encoder, autoencoder, denoiser, schedule, sampling)
        except ConfigError as err:
            raise CheckpointError(f"{folder}: {err}") from err
        return pipe.to(device) if device is not None else pipe

    def save_pretrained(self, folder: str | os.PathLike, *, dtype: torch.dtype | None = None) -> None:
        """Write the pipeline folder; ``dtype=torch.float16`` halves its size (loads back as fp32)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_component(self.autoencoder, folder / "autoencoder", dtype=dtype)
        if self.denoiser is not None:
            save_component(self.denoiser, folder / "denoiser", dtype=dtype)
        sampling = to_dict(self.sampling)
        if not self.supports_prompts:  # the model_index.json of before prompts existed: older loaders read it
            del sampling["guidance_scale"]
        index = {"_class_name": type(self).__name__, "format_version": FORMAT_VERSION,
                 "components": {"autoencoder": "CosmosAutoencoder",
                                "denoiser": "CosmosDenoiser" if self.denoiser is not None else None},
                 "schedule": to_dict(self.schedule.config), "sampling": sampling}
        (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")

    def to(self, device: str | torch.device) -> "CosmosPipeline":
        self.device = torch.device(device)
        for module in (self.encoder, self.autoencoder, self.denoiser):
            if module is not None:
                module.to(self.device)
        return self

    # --- text <-> latents --------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        return self.autoencoder.cfg.max_length

    @property
    def latent_shape(self) -> tuple[int, int]:
        return self.autoencoder.cfg.num_latents, self.autoencoder.cfg.latent_width

    @property
    def supports_prompts(self) -> bool:
        """True when the denoiser is prompt-conditioned (``generate(prompt=...)`` works)."""
        return self.denoiser is not None and self.denoiser.cfg.conditional

    def tokenize(self, texts: str | list[str]) -> TokenizedBatch:
        return self.encoder.tokenize(texts, self.max_length)

    @torch.inference_mode()
    def encode(self, texts: str | list[str]) -> torch.Tensor:
        """Texts -> latents (B, N, d). Texts longer than L tokens are cut to L, with a TextTruncatedWarning."""
        texts = as_text_list(texts)
        if not texts:
            return torch.zeros((0, *self.latent_shape), device=self.device)
        batch = self.tokenize(texts)
        _warn_truncated(batch, "text(s)", "tokens")
        ids, mask = batch.input_ids.to(self.device), batch.attention_mask.to(self.device)
        return self.autoencoder.encode(self.encoder(ids, mask), mask)

    @torch.inference_mode()
    def encode_prompts(self, prompts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> source features (B, S, source_dim) and mask (B, S) for a conditional denoiser.

        Frozen-encoder token features, normalised like the autoencoder's input (its feature
        statistics), padded to the longest prompt. Prompts longer than the denoiser's
        ``source_max_length`` tokens ([CLS] and [SEP] included) are cut to it, with a
        TextTruncatedWarning.
        """
        self._require_prompts()
        batch = self.encoder.tokenize(as_text_list(prompts), self.denoiser.cfg.source_max_length)
        _warn_truncated(batch, "prompt(s)", "prompt tokens")
        width = max(1, int(batch.attention_mask.sum(1).max()))          # longest prompt; the rest is padding
        ids = batch.input_ids[:, :width].to(self.device)
        mask = batch.attention_mask[:, :width].to(self.device)
        return self.autoencoder.normalize_features(self.encoder(ids, mask)), mask

    def _prompts(self, prompt, num, guidance_scale, max_num: int | None = None) -> tuple[int, _Prompts | None]:
        """Validate ``prompt`` / ``num`` / ``guidance_scale``: (number of samples, encoded prompts or None)."""
        if prompt is None:
            if guidance_scale is not None:
                raise ValueError("guidance_scale applies to prompted generation only; give a prompt or leave "
                                 "guidance_scale unset")
            return _check_int("num", 1 if num is None else num, 1, max_num), None
        self._require_prompts()
        scale = self.sampling.guidance_scale if guidance_scale is None else guidance_scale
        if not is_guidance_scale(scale):
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {scale!r}")
        if isinstance(prompt, (list, tuple)):
            if not prompt:
                raise ValueError("prompt is an empty list; give at least one prompt (or None for no prompt)")
            if num is not None and _check_int("num", num, 1) != len(prompt):
                raise ValueError(f"num ({num}) must equal the number of prompts ({len(prompt)}) or be left unset: "
                                 "a list of prompts gives one sample per prompt")
            if max_num is not None and len(prompt) > max_num:
                raise ValueError(f"prompt: at most {max_num} prompts at a time here, got {len(prompt)}")
            num = _check_int("num", len(prompt), 1, max_num)
        else:
            num = _check_int("num", 1 if num is None else num, 1, max_num)
        try:
            texts = as_text_list(prompt)
        except TypeError as err:
            raise ValueError(f"prompt must be a string or a list of strings ({err})") from None
        blank = [i for i, text in enumerate(texts) if not text.strip()]
        if blank:
            raise ValueError(f"prompt must not be empty or blank (prompt {blank[0]} is {texts[blank[0]]!r})")
        features, mask = self.encode_prompts(texts)
        if len(texts) == 1 and num > 1:                      # one prompt, ``num`` samples of it
            features, mask = features.expand(num, -1, -1), mask.expand(num, -1)
        return num, _Prompts(features, mask, float(scale))

    @torch.inference_mode()
    def decode_token_ids(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, N, d) -> argmax tokenizer ids (B, L), one decoder pass."""
        self._check_latents(latents)
        dtype = self.autoencoder.head.weight.dtype
        return self.autoencoder.logits_to_token_ids(self.autoencoder.decode(latents.to(self.device, dtype)))

    def _kept_positions(self, row: list[int]) -> list[int]:
        """Positions of a decoded row that make its text: after a leading [CLS], before the first
        [SEP], without [PAD] / [CLS] / [MASK]."""
        cfg = self.autoencoder.cfg
        start = 1 if row and row[0] == cfg.cls_token_id else 0
        end = row.index(cfg.sep_token_id, start) if cfg.sep_token_id in row[start:] else len(row)
        dropped = (cfg.pad_token_id, cfg.cls_token_id, cfg.mask_token_id)
        return [j for j in range(start, end) if row[j] not in dropped]

    def ids_to_tokens(self, token_ids: torch.Tensor) -> list[list[tuple[int, str]]]:
        """Per row, (position, wordpiece) of the tokens :meth:`ids_to_texts` turns into text."""
        rows = token_ids.tolist()
        return [[(j, self.encoder.tokenizer.convert_ids_to_tokens(row[j])) for j in self._kept_positions(row)]
                for row in rows]

    def ids_to_texts(self, token_ids: torch.Tensor) -> list[str]:
        """Cut each row at its first [SEP] (after a leading [CLS]) and detokenise."""
        texts = []
        for row in token_ids.tolist():
            kept = [row[j] for j in self._kept_positions(row)]
            texts.append(self.encoder.tokenizer.decode(kept, skip_special_tokens=False,
                                                       clean_up_tokenization_spaces=True).strip())
        return texts

    def decode(self, latents: torch.Tensor) -> list[str]:
        """Latents (B, N, d) -> texts."""
        return self.ids_to_texts(self.decode_token_ids(latents))

    def _check_latents(self, latents: torch.Tensor) -> None:
        if not isinstance(latents, torch.Tensor):
            raise TypeError(f"latents must be a torch.Tensor, got {type(latents).__name__}")
        if latents.ndim != 3 or tuple(latents.shape[1:]) != self.latent_shape:
            raise ValueError(f"latents must have shape (B, {self.latent_shape[0]}, {self.latent_shape[1]}), "
                             f"got {tuple(latents.shape)}")
        if latents.is_floating_point() and not bool(torch.isfinite(latents).all()):
            raise ValueError("latents contain NaN or inf values")

    # --- diffusion ---------------------------------------------------------------------------
    def _require_denoiser(self) -> CosmosDenoiser:
        if self.denoiser is None:
            raise RuntimeError("this pipeline has no denoiser (autoencoder-only checkpoint): "
                               "train one with the diffusion stage before generating")
        return self.denoiser

    def _require_prompts(self) -> None:
        if not self.supports_prompts:
            self._require_denoiser()  # an autoencoder-only pipeline says so first
            raise ValueError("prompt: this checkpoint is unconditional (its denoiser was trained without "
                             "prompts); generate without a prompt or load a prompt-conditioned checkpoint")

    def _sampler_settings(self, steps, sampler) -> tuple[int, str]:
        steps = _check_int("steps", self.sampling.steps if steps is None else steps, 1, 10_000)
        sampler = self.sampling.sampler if sampler is None else sampler
        get_sampler(sampler)  # validates the name
        return steps, sampler

    def _denoise(self, z_start: torch.Tensor, steps: int, sampler: str, generator: torch.Generator,
                 t_start: float = 1.0, prompts: _Prompts | None = None) -> Iterator[Step]:
        """Run a sampler from z_start (normalised space) at t_start; yields its Steps. With ``prompts``
        (one row per sample) the denoiser is wrapped with classifier-free guidance."""
        denoiser = self._require_denoiser()
        model = denoiser if prompts is None else guided(denoiser, prompts.features, prompts.mask, prompts.scale)
        return get_sampler(sampler)(model, self.schedule, z_start.to(self.device), steps,
                                    generator=generator, t_start=t_start, t_end=self.sampling.t_end,
                                    self_condition=denoiser.cfg.self_condition)

    def _denoise_chunked(self, z_start: torch.Tensor, steps: int, sampler: str, generator: torch.Generator,
                         t_start: float = 1.0, progress: ProgressCallback | None = None,
                         prompts: _Prompts | None = None) -> torch.Tensor:
        """Run the sampler to its end on chunks of ``sampling.batch_size``; returns the final z (B, N, d),
        normalised space. ``progress(done, total)`` is called after every step."""
        chunk = self.sampling.batch_size
        starts = range(0, z_start.shape[0], chunk)
        total, done, finals = steps * len(starts), 0, []
        for start in starts:
            last = None
            extra = {} if prompts is None else {"prompts": prompts.rows(start, start + chunk)}
            for last in self._denoise(z_start[start:start + chunk], steps, sampler, generator, t_start, **extra):
                done += 1
                if progress is not None:
                    progress(done, total)
            finals.append(last.z_t)
        return torch.cat(finals)

    @staticmethod
    def _generator(seed: int | None) -> torch.Generator:
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(_check_int("seed", seed, 0, 2 ** 63 - 1))
        return g

    def _prior(self, num: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn((num, *self.latent_shape), generator=generator)  # (B, N, d) on CPU

    @torch.inference_mode()
    def generate(self, num: int | None = None, steps: int | None = None, sampler: str | None = None,
                 seed: int | None = None, progress: ProgressCallback | None = None,
                 prompt: str | list[str] | None = None, guidance_scale: float | None = None) -> GenerationOutput:
        """Samples: noise -> ``steps`` sampler steps -> decode. Same seed (and prompt), same texts.

        Without ``prompt``: ``num`` (default 1) unconditional samples. With a prompt (conditional
        checkpoints only, see :attr:`supports_prompts`): a string gives ``num`` (default 1) samples
        continuing it; a list gives one sample per prompt, in order (``num`` unset or equal to its
        length). Prompts are cut to the denoiser's ``source_max_length`` tokens. ``guidance_scale``
        (default ``sampling.guidance_scale``) is the classifier-free guidance weight w >= 0:
        x0 = x0_c + w (x0_c - x0_u); 0 = conditional without guidance.
        """
        num, prompts = self._prompts(prompt, num, guidance_scale)
        steps, sampler = self._sampler_settings(steps, sampler)
        generator = self._generator(seed)
        z_T = self._prior(num, generator)
        z = self._denoise_chunked(z_T, steps, sampler, generator, progress=progress, prompts=prompts)
        latents = self._require_denoiser().denormalize(z)
        return GenerationOutput(self.decode(latents), latents)

    @torch.inference_mode()
    def trajectory(self, num: int | None = None, steps: int | None = None, sampler: str | None = None,
                   seed: int | None = None, prompt: str | list[str] | None = None,
                   guidance_scale: float | None = None) -> Iterator[TrajectoryStep]:
        """Like :meth:`generate` (same arguments and seed, same final texts) but yields every step with
        its decoded x0; at most ``sampling.batch_size`` samples (one batch)."""
        num, prompts = self._prompts(prompt, num, guidance_scale, max_num=self.sampling.batch_size)
        steps, sampler = self._sampler_settings(steps, sampler)
        generator = self._generator(seed)
        denoiser = self._require_denoiser()
        for step in self._denoise(self._prior(num, generator), steps, sampler, generator, prompts=prompts):
            x0 = denoiser.denormalize(step.x0_hat)
            ids = self.decode_token_ids(x0)
            final = denoiser.denormalize(step.z_t) if step.i == steps - 1 else None
            yield TrajectoryStep(step.i, steps, step.t, step.z_t, x0, ids, self.ids_to_texts(ids),
                                 None if final is None else self.decode(final), final)

    @torch.inference_mode()
    def interpolate(self, text_a: str, text_b: str, k: int = 8, method: str = "slerp",
                    steps: int | None = None, progress: ProgressCallback | None = None) -> InterpolationOutput:
        """Decode ``k`` points on a path between two texts' latents.

        lerp / slerp: straight or spherical (per latent vector) paths in latent space.
        noise: map both latents to noise with deterministic DDIM inversion, slerp the noises, and
        denoise each point with DDIM (needs a denoiser; ``steps`` defaults to 50).
        """
        k = _check_int("k", k, 2, 1000)
        if method not in INTERPOLATION_METHODS:
            raise ValueError(f"method must be one of {INTERPOLATION_METHODS}, got {method!r}")
        if not (isinstance(text_a, str) and isinstance(text_b, str)):
            raise TypeError("interpolate takes two strings")
        z = self.encode([text_a, text_b])                                      # (2, N, d)
        weights = [i / (k - 1) for i in range(k)]
        if method == "lerp":
            latents = torch.stack([(1 - w) * z[0] + w * z[1] for w in weights])
        elif method == "slerp":
            latents = torch.stack([slerp(z[0], z[1], w) for w in weights])
        else:
            denoiser = self._require_denoiser()
            steps = _check_int("steps", 50 if steps is None else steps, 1, 10_000)
            noise = invert_ddim(denoiser, self.schedule, denoiser.normalize(z), steps,
                                t_end=self.sampling.t_end, self_condition=denoiser.cfg.self_condition)
            flat = noise.flatten(1)                                            # (2, N * d)
            z_T = torch.stack([slerp(flat[0], flat[1], w) for w in weights]).view(k, *self.latent_shape)
            latents = denoiser.denormalize(self._denoise_chunked(z_T, steps, "ddim", self._generator(0),
                                                                 progress=progress))
        return InterpolationOutput(weights, self.decode(latents), latents)

    @torch.inference_mode()
    def vary(self, text: str, strength: float = 0.5, num: int = 4, steps: int | None = None,
             sampler: str | None = None, seed: int | None = None,
             progress: ProgressCallback | None = None) -> GenerationOutput:
        """Variations of a text (SDEdit, Meng et al. 2022): noise its latent to time t, then denoise.

        t = t_end + strength (1 - t_end); strength 1 starts from pure noise (the text is forgotten).
        The sampler runs max(1, round(strength x steps)) steps.
        """
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength) \
                or not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be a number in (0, 1], got {strength!r}")
        num = _check_int("num", num, 1)
        steps, sampler = self._sampler_settings(steps, sampler)
        denoiser = self._require_denoiser()
        generator = self._generator(seed)
        t_start = self.sampling.t_end + float(strength) * (1.0 - self.sampling.t_end)
        if t_start <= self.sampling.t_end:  # a strength so small (< ~1e-17) that it adds no noise at all
            raise ValueError(f"strength must be a number in (0, 1] large enough to add noise, got {strength!r}")
        texts = as_text_list(text)
        if len(texts) != 1:
            raise ValueError(f"vary takes one text, got {len(texts)}")
        z0 = denoiser.normalize(self.encode(texts)).expand(num, -1, -1)  # (num, N, d)
        t = torch.full((num,), t_start)
        z_t = self.schedule.add_noise(z0.cpu(), t, torch.randn(z0.shape, generator=generator))
        z = self._denoise_chunked(z_t, max(1, round(strength * steps)), sampler, generator, t_start, progress)
        latents = denoiser.denormalize(z)
        return GenerationOutput(self.decode(latents), latents)
