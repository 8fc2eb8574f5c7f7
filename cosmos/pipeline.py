"""CosmosPipeline: text <-> latents, and the four tasks (generate, trajectory, interpolate, vary).

    text --tokenize--> ids (B, L) --frozen encoder--> features (B, L, D)
         --compressor--> latents z (B, N, d) --normalise--> diffusion space (B, N, d)
    noise --sampler + denoiser--> z --denormalise--> decoder --> logits (B, L, V) --argmax, cut at [SEP]--> text

A prompt-conditioned checkpoint (``pipe.supports_prompts``) also takes a prompt, read by the denoiser
through cross-attention with classifier-free guidance (``cosmos.prompts``; method: "Conditional tasks").

This class holds the components and runs the tasks; everything else lives beside it, one job a module:
the folder format (``pipeline_folder``), argument and compatibility checks (``validation``), prompts
(``prompts``), turning decoded ids into text (``detokenize``), interpolation paths (``interpolation``) and
the returned types (``outputs``), infill's chunk bookkeeping and pinning (``infill``). Apps and benchmarks use the public methods and properties here only.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Callable, Iterator

import torch

from .autoencoder import CosmosAutoencoder
from .casing import CasingTable
from .checkpoint import CheckpointError, count_parameters, resolve_pretrained
from .config import AutoencoderConfig, ConfigError, DenoiserConfig, SamplingConfig, ScheduleConfig, to_dict
from .denoiser import CosmosDenoiser
from .detokenize import Detokenizer
from .encoder import FrozenEncoder, TokenizedBatch, as_text_list
from .infill import TextChunk, keep_mask, pinning
from .interpolation import INTERPOLATION_METHODS, latent_path, path_weights
from .outputs import GenerationOutput, InfillOutput, InterpolationOutput, PipelineSummary, TrajectoryStep
from .pipeline_folder import PipelineParts, read_pipeline_folder, write_pipeline_folder
from .prompts import PromptBatch, check_prompt_request, longest_prompt, prompt_features
from .sampling import Pin, Step, end_on_x0, get_sampler, guided, invert_ddim
from .schedule import TanDSchedule
from .validation import TextTruncatedWarning, check_compatible, check_int, check_strength, warn_truncated

__all__ = ["CosmosPipeline", "GenerationOutput", "InfillOutput", "InterpolationOutput", "PipelineSummary",
           "TextTruncatedWarning",
           "TrajectoryStep", "ProgressCallback", "vary_steps"]

ProgressCallback = Callable[[int, int], None]
"""Called after every sampler step with (steps done, steps in total) across all batch chunks."""


def vary_steps(strength: float, steps: int) -> int:
    """Sampler steps :meth:`CosmosPipeline.vary` runs: the share ``strength`` of ``steps``, at least 1."""
    return max(1, round(strength * steps))


class CosmosPipeline:
    """Everything a user (or the app) calls. Methods run under ``torch.inference_mode``."""

    def __init__(self, encoder: FrozenEncoder, autoencoder: CosmosAutoencoder,
                 denoiser: CosmosDenoiser | None = None, schedule: ScheduleConfig | None = None,
                 sampling: SamplingConfig | None = None, casing: CasingTable | None = None,
                 sampling_presets: dict[str, SamplingConfig] | None = None):
        check_compatible(encoder, autoencoder, denoiser)
        self.encoder = encoder.eval()
        self.autoencoder = autoencoder.eval()
        self.denoiser = denoiser.eval() if denoiser is not None else None
        self.schedule = TanDSchedule(schedule)
        self.sampling = sampling or SamplingConfig()
        # named sampler settings recorded with the checkpoint besides its default (``sampling``); e.g. "paper":
        # the setting the paper's figures were measured with (a converted release: 200 SDE steps to t = 0.05)
        self.sampling_presets: dict[str, SamplingConfig] = dict(sampling_presets or {})
        self.device = torch.device("cpu")
        self.folder: Path | None = None          # where it was loaded from (None: built in memory)
        ae = autoencoder.cfg
        self.detokenizer = Detokenizer(encoder.tokenizer, ae.cls_token_id, ae.sep_token_id, ae.pad_token_id,
                                       ae.mask_token_id, casing)

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
        parts = read_pipeline_folder(folder)
        encoder = encoder or FrozenEncoder.from_pretrained(parts.autoencoder.cfg.encoder)
        try:
            pipe = cls(encoder, parts.autoencoder, parts.denoiser, parts.schedule, parts.sampling, parts.casing,
                       parts.sampling_presets)
        except ConfigError as err:
            raise CheckpointError(f"{folder}: {err}") from err
        pipe.folder = folder
        return pipe.to(device) if device is not None else pipe

    def save_pretrained(self, folder: str | os.PathLike, *, dtype: torch.dtype | None = None) -> None:
        """Write the pipeline folder; ``dtype=torch.float16`` halves its size (loads back as fp32)."""
        parts = PipelineParts(self.autoencoder, self.denoiser, self.schedule.config, self.sampling,
                              self.detokenizer.casing, self.sampling_presets)
        write_pipeline_folder(Path(folder), parts, type(self).__name__, dtype=dtype)

    def with_sampling(self, sampling: SamplingConfig | str) -> "CosmosPipeline":
        """This pipeline with other sampler settings (its components shared, this one unchanged): a
        :class:`SamplingConfig`, or the name of one of :attr:`sampling_presets` (e.g. ``"paper"``).
        ``pipe.with_sampling("paper").generate(4)`` samples exactly as the preset says (sampler, steps, grid,
        t_end, final_x0), which ``generate``'s own ``steps`` / ``sampler`` arguments alone cannot."""
        if isinstance(sampling, str):
            if sampling not in self.sampling_presets:
                raise ValueError(f"no sampling preset {sampling!r}; this checkpoint has "
                                 f"{sorted(self.sampling_presets) or 'none'}")
            sampling = self.sampling_presets[sampling]
        if not isinstance(sampling, SamplingConfig):
            raise TypeError(f"sampling must be a SamplingConfig or a preset name, got {type(sampling).__name__}")
        other = copy.copy(self)
        other.sampling = sampling
        return other

    def to(self, device: str | torch.device) -> "CosmosPipeline":
        self.device = torch.device(device)
        for module in (self.encoder, self.autoencoder, self.denoiser):
            if module is not None:
                module.to(self.device)
        return self

    # --- what is loaded ----------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        """L: tokens per text."""
        return self.autoencoder.cfg.max_length

    @property
    def latent_shape(self) -> tuple[int, int]:
        """(N, d): latents per text and their width."""
        return self.autoencoder.cfg.num_latents, self.autoencoder.cfg.latent_width

    @property
    def tokenizer(self):
        """The frozen encoder's tokenizer (a transformers tokenizer)."""
        return self.encoder.tokenizer

    @property
    def can_generate(self) -> bool:
        """True when there is a denoiser (an autoencoder-only checkpoint only encodes and decodes)."""
        return self.denoiser is not None

    @property
    def supports_prompts(self) -> bool:
        """True when the denoiser is prompt-conditioned (``generate(prompt=...)`` works)."""
        return self.denoiser is not None and self.denoiser.cfg.conditional

    @property
    def prompt_max_tokens(self) -> int | None:
        """The most prompt tokens the denoiser reads ([CLS] and [SEP] included); None if it takes no prompt."""
        return self.denoiser.cfg.source_max_length if self.supports_prompts else None

    @property
    def fingerprint(self) -> str:
        """A digest of the autoencoder's weights: a stored latent map is valid for this autoencoder only."""
        from .projection import autoencoder_fingerprint
        return autoencoder_fingerprint(self.autoencoder)

    def noise_level(self, t: float) -> float:
        """σ(t) = s(t) / a(t) of the tan-d schedule at time t (method, Eq. 3)."""
        return float(self.schedule.sigma(torch.tensor(float(t))))

    def summary(self) -> PipelineSummary:
        """What is loaded: sizes, architecture, sampling defaults and configs (see :class:`PipelineSummary`)."""
        ae, dn = self.autoencoder.cfg, self.denoiser.cfg if self.denoiser is not None else None
        configs = {"autoencoder": to_dict(ae), "schedule": to_dict(self.schedule.config),
                   "sampling": to_dict(self.sampling)}
        if dn is not None:
            configs["denoiser"] = to_dict(dn)
        parameters = {"encoder": count_parameters(self.encoder), "compressor": count_parameters(self.autoencoder.compressor),
                      "decoder": count_parameters(self.autoencoder.decoder), "head": count_parameters(self.autoencoder.head),
                      "autoencoder": count_parameters(self.autoencoder), "denoiser": count_parameters(self.denoiser)}
        return PipelineSummary(
            encoder=ae.encoder, encoder_width=ae.hidden_size, vocab_size=ae.vocab_size, max_length=ae.max_length,
            num_latents=ae.num_latents, latent_width=ae.latent_width, autoencoder=ae.architecture(),
            denoiser=None if dn is None else (f"{dn.num_layers} blocks x {dn.latent_dim}, {dn.num_heads} heads, "
                                              f"self-conditioning {dn.self_condition}"),
            parameters=parameters, sampler=self.sampling.sampler, steps=self.sampling.steps,
            time_grid=self.sampling.time_grid, t_end=self.sampling.t_end, schedule_d=self.schedule.config.d, supports_prompts=self.supports_prompts,
            prompt_max_tokens=self.prompt_max_tokens, guidance_scale=float(self.sampling.guidance_scale),
            configs=configs)

    # --- text <-> latents --------------------------------------------------------------------
    def tokenize(self, texts: str | list[str]) -> TokenizedBatch:
        return self.encoder.tokenize(texts, self.max_length)

    @torch.inference_mode()
    def encode(self, texts: str | list[str]) -> torch.Tensor:
        """Texts -> latents (B, N, d). Texts longer than L tokens are cut to L, with a TextTruncatedWarning."""
        texts = as_text_list(texts)
        if not texts:
            return torch.zeros((0, *self.latent_shape), device=self.device)
        batch = self.tokenize(texts)
        warn_truncated(batch, "text(s)", "tokens")
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
        warn_truncated(batch, "prompt(s)", "prompt tokens")
        width = longest_prompt(batch.attention_mask)        # the encoder need not read the padding after it
        ids = batch.input_ids[:, :width].to(self.device)
        mask = batch.attention_mask[:, :width].to(self.device)
        return prompt_features(self.autoencoder, self.encoder(ids, mask), mask)

    def _prompts(self, prompt, num, guidance_scale, max_num: int | None = None) -> tuple[int, PromptBatch | None]:
        """Validate ``prompt`` / ``num`` / ``guidance_scale``: (number of samples, encoded prompts or None)."""
        if prompt is not None:
            self._require_prompts()
        num, texts, scale = check_prompt_request(prompt, num, guidance_scale, self.sampling.guidance_scale, max_num)
        if texts is None:
            return num, None
        features, mask = self.encode_prompts(texts)
        if len(texts) == 1 and num > 1:                      # one prompt, ``num`` samples of it
            features, mask = features.expand(num, -1, -1), mask.expand(num, -1)
        return num, PromptBatch(features, mask, scale)

    @torch.inference_mode()
    def decode_token_ids(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, N, d) -> argmax tokenizer ids (B, L), one decoder pass."""
        self._check_latents(latents)
        dtype = self.autoencoder.head.weight.dtype
        return self.autoencoder.logits_to_token_ids(self.autoencoder.decode(latents.to(self.device, dtype)))

    def ids_to_tokens(self, token_ids: torch.Tensor) -> list[list[tuple[int, str]]]:
        """Per row, (position, wordpiece) of the tokens :meth:`ids_to_texts` turns into text."""
        return self.detokenizer.tokens(token_ids)

    def ids_to_texts(self, token_ids: torch.Tensor) -> list[str]:
        """Cut each row at its first [SEP] (after a leading [CLS]) and detokenise."""
        return self.detokenizer.texts(token_ids)

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

    @property
    def self_conditioned(self) -> bool:
        """Whether sampling feeds each step's x0 estimate back: the denoiser was trained with
        self-conditioning and the sampling settings ask for it (``SamplingConfig.self_condition``)."""
        return self._require_denoiser().cfg.self_condition and self.sampling.self_condition

    def _sampler_settings(self, steps, sampler) -> tuple[int, str]:
        steps = check_int("steps", self.sampling.steps if steps is None else steps, 1, 10_000)
        sampler = self.sampling.sampler if sampler is None else sampler
        get_sampler(sampler)  # validates the name
        return steps, sampler

    def _denoise(self, z_start: torch.Tensor, steps: int, sampler: str, generator: torch.Generator,
                 t_start: float = 1.0, prompts: PromptBatch | None = None, pin: Pin | None = None) -> Iterator[Step]:
        """Run a sampler from z_start (normalised space) at t_start; yields its Steps. With ``prompts``
        (one row per sample) the denoiser is wrapped with classifier-free guidance; ``pin`` rewrites the
        state after every step (infill)."""
        denoiser = self._require_denoiser()
        model = denoiser if prompts is None else guided(denoiser, prompts.features, prompts.mask, prompts.scale)
        run = get_sampler(sampler)(model, self.schedule, z_start.to(self.device), steps,
                                   generator=generator, t_start=t_start, t_end=self.sampling.t_end,
                                   self_condition=self.self_conditioned, pin=pin,
                                   grid=self.sampling.time_grid)
        return end_on_x0(run, steps, pin) if self.sampling.final_x0 else run

    def _denoise_chunked(self, z_start: torch.Tensor, steps: int, sampler: str, generator: torch.Generator,
                         t_start: float = 1.0, progress: ProgressCallback | None = None,
                         prompts: PromptBatch | None = None) -> torch.Tensor:
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
            g.manual_seed(check_int("seed", seed, 0, 2 ** 63 - 1))
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
            final_ids = None if final is None else self.decode_token_ids(final)
            yield TrajectoryStep(step.i, steps, step.t, step.z_t, x0, ids, self.ids_to_texts(ids),
                                 None if final is None else self.ids_to_texts(final_ids), final,
                                 self.noise_level(step.t), final_ids)

    @torch.inference_mode()
    def interpolate(self, text_a: str, text_b: str, k: int = 8, method: str = "slerp",
                    steps: int | None = None, progress: ProgressCallback | None = None) -> InterpolationOutput:
        """Decode ``k`` points on a path between two texts' latents.

        lerp / slerp: straight or spherical (per latent vector) paths in latent space.
        noise: map both latents to noise with deterministic DDIM inversion, slerp the noises, and
        denoise each point with DDIM (needs a denoiser; ``steps`` defaults to 50).
        """
        k = check_int("k", k, 2, 1000)
        if method not in INTERPOLATION_METHODS:
            raise ValueError(f"method must be one of {tuple(INTERPOLATION_METHODS)}, got {method!r}")
        if not (isinstance(text_a, str) and isinstance(text_b, str)):
            raise TypeError("interpolate takes two strings")
        z = self.encode([text_a, text_b])                                      # (2, N, d)
        weights = path_weights(k)
        if method in ("lerp", "slerp"):
            latents = latent_path(z[0], z[1], weights, method)
        else:
            denoiser = self._require_denoiser()
            steps = check_int("steps", 50 if steps is None else steps, 1, 10_000)
            noise = invert_ddim(denoiser, self.schedule, denoiser.normalize(z), steps,
                                t_end=self.sampling.t_end, self_condition=self.self_conditioned)
            flat = noise.flatten(1)                                            # (2, N * d)
            z_T = latent_path(flat[0], flat[1], weights, "slerp").view(k, *self.latent_shape)
            latents = denoiser.denormalize(self._denoise_chunked(z_T, steps, "ddim", self._generator(0),
                                                                 progress=progress))
        return InterpolationOutput(weights, self.decode(latents), latents)

    @torch.inference_mode()
    def vary(self, text: str, strength: float = 0.5, num: int = 4, steps: int | None = None,
             sampler: str | None = None, seed: int | None = None,
             progress: ProgressCallback | None = None) -> GenerationOutput:
        """Variations of a text (SDEdit, Meng et al. 2022): noise its latent to time t, then denoise.

        t = t_end + strength (1 - t_end); strength 1 starts from pure noise (the text is forgotten).
        The sampler runs :func:`vary_steps` (strength, steps) steps.
        """
        strength = check_strength(strength)
        num = check_int("num", num, 1)
        steps, sampler = self._sampler_settings(steps, sampler)
        denoiser = self._require_denoiser()
        generator = self._generator(seed)
        t_start = self.sampling.t_end + strength * (1.0 - self.sampling.t_end)
        if t_start <= self.sampling.t_end:  # a strength so small (< ~1e-17) that it adds no noise at all
            raise ValueError(f"strength must be a number in (0, 1] large enough to add noise, got {strength!r}")
        texts = as_text_list(text)
        if len(texts) != 1:
            raise ValueError(f"vary takes one text, got {len(texts)}")
        z0 = denoiser.normalize(self.encode(texts)).expand(num, -1, -1)  # (num, N, d)
        t = torch.full((num,), t_start)
        z_t = self.schedule.add_noise(z0.cpu(), t, torch.randn(z0.shape, generator=generator))
        z = self._denoise_chunked(z_t, vary_steps(strength, steps), sampler, generator, t_start, progress)
        latents = denoiser.denormalize(z)
        return GenerationOutput(self.decode(latents), latents)

    # --- infill (chunk-local latents only) -----------------------------------------------------
    @property
    def chunk_size(self) -> int | None:
        """r = L / N: the tokens each latent owns, on a chunk-local checkpoint; None where latents own no span."""
        return self.autoencoder.cfg.chunk_size if self.autoencoder.cfg.compressor_type == "chunk" else None

    @property
    def supports_infill(self) -> bool:
        """True when each latent owns a span of tokens (the chunk compressor) and there is a denoiser."""
        return self.denoiser is not None and self.autoencoder.cfg.compressor_type == "chunk"

    def _require_infill(self) -> None:
        self._require_denoiser()
        if not self.supports_infill:
            raise ValueError("infill needs a chunk-local autoencoder (compressor_type 'chunk'), whose latent i holds "
                             "tokens [i r, (i + 1) r) only; this checkpoint's Perceiver latents each attend to every "
                             "token, so no latent belongs to a span that could be kept")

    def chunks(self, text: str) -> list[TextChunk]:
        """The text's tokenised row cut into the N chunks the latents own (``keep`` names them by index)."""
        self._require_infill()
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        ids = self.tokenize([text]).input_ids                                             # (1, L)
        row, shown = ids[0].tolist(), dict(self.ids_to_tokens(ids)[0])   # position -> wordpiece as displayed
        cfg, r = self.autoencoder.cfg, self.autoencoder.cfg.chunk_size
        special = (cfg.cls_token_id, cfg.sep_token_id, cfg.pad_token_id)
        end = row.index(cfg.sep_token_id) if cfg.sep_token_id in row else len(row)      # where [SEP] sits
        chunks = []
        for i in range(cfg.num_latents):
            kept = [j for j in range(i * r, (i + 1) * r) if row[j] not in special]
            pieces = [shown.get(j) or self.tokenizer.convert_ids_to_tokens(row[j]) for j in kept]
            chunks.append(TextChunk(i, i * r, (i + 1) * r, pieces, bool(kept), i * r <= end < (i + 1) * r))
        return chunks

    def _infill_start(self, text, keep, num, prompt, guidance_scale):
        """Checked infill request: (num, prompts, the text's ids (1, L), kept chunks (N,), its latents (num, N, d)
        in diffusion space)."""
        self._require_infill()
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty string, got {text!r}")
        num, prompts = self._prompts(prompt, num, guidance_scale, max_num=self.sampling.batch_size)
        batch = self.tokenize([text])
        cfg = self.autoencoder.cfg
        kept = keep_mask(keep, cfg.num_latents, cfg.chunk_size, int(batch.attention_mask[0].sum()))
        z0 = self.denoiser.normalize(self.encode([text])).expand(num, -1, -1)      # (num, N, d); warns if cut
        return num, prompts, batch.input_ids, kept, z0

    def _splice(self, ids: torch.Tensor, kept: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """Decoded ids (B, L) with the kept chunks' positions set to the text's own ids (1, L)."""
        kept_tokens = kept.repeat_interleave(self.autoencoder.cfg.chunk_size).to(token_ids.device)   # (L,)
        return torch.where(kept_tokens[None, :], ids.to(token_ids.device), token_ids)

    @torch.inference_mode()
    def infill_trajectory(self, text: str, keep, num: int | None = None, steps: int | None = None,
                          sampler: str | None = None, seed: int | None = None, prompt: str | None = None,
                          guidance_scale: float | None = None) -> Iterator[TrajectoryStep]:
        """Like :meth:`trajectory` for :meth:`infill` (same arguments and seed, same final texts): every
        step's x0 estimate decoded, kept chunks showing the text's own tokens."""
        num, prompts, ids, kept, z0 = self._infill_start(text, keep, num, prompt, guidance_scale)
        steps, sampler = self._sampler_settings(steps, sampler)
        generator = self._generator(seed)
        pin = pinning(self.schedule, z0, kept, steps, generator)
        z_T = pin(self._prior(num, generator).to(self.device), -1, 1.0)
        denoiser = self.denoiser
        for step in self._denoise(z_T, steps, sampler, generator, prompts=prompts, pin=pin):
            x0 = denoiser.denormalize(torch.where(kept.to(self.device)[None, :, None], z0, step.x0_hat))
            token_ids = self._splice(ids, kept, self.decode_token_ids(x0))
            last = step.i == steps - 1
            final = denoiser.denormalize(step.z_t) if last else None
            sample_ids = self._splice(ids, kept, self.decode_token_ids(final)) if last else None
            yield TrajectoryStep(step.i, steps, step.t, step.z_t, x0, token_ids, self.ids_to_texts(token_ids),
                                 self.ids_to_texts(sample_ids) if last else None, final, self.noise_level(step.t),
                                 sample_ids)

    @torch.inference_mode()
    def infill(self, text: str, keep, num: int | None = None, steps: int | None = None, sampler: str | None = None,
               seed: int | None = None, prompt: str | None = None, guidance_scale: float | None = None,
               progress: ProgressCallback | None = None) -> InfillOutput:
        """Keep the chunks ``keep`` names of ``text`` and sample the others (``cosmos.infill``); ``num`` variants
        (at most ``sampling.batch_size``). ``keep`` lists chunk indices (see :meth:`chunks`) or (start, end)
        token spans of the tokenised row ([CLS] at 0). Keeping the first chunks continues the text, keeping
        the last ones writes what comes before them; none kept is plain generation, all kept gives the text
        back. Chunk-local checkpoints only (:attr:`supports_infill`)."""
        num, prompts, ids, kept, z0 = self._infill_start(text, keep, num, prompt, guidance_scale)
        steps, sampler = self._sampler_settings(steps, sampler)
        generator = self._generator(seed)
        pin = pinning(self.schedule, z0, kept, steps, generator)
        z, done = pin(self._prior(num, generator).to(self.device), -1, 1.0), 0
        for step in self._denoise(z, steps, sampler, generator, prompts=prompts, pin=pin):
            z, done = step.z_t, done + 1
            if progress is not None:
                progress(done, steps)
        latents = self.denoiser.denormalize(z)
        token_ids = self._splice(ids, kept, self.decode_token_ids(latents))
        return InfillOutput(self.ids_to_texts(token_ids), latents, token_ids, kept.nonzero().flatten().tolist())

