"""What every tab works on: the loaded pipeline, its model card, its latent map, and the request limits."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr
import torch

from cosmos import SAMPLER_LABELS, CosmosPipeline, SamplingConfig
from cosmos.checkpoint import DEFAULT_CHECKPOINT
from cosmos.projection import LatentMap, LatentMapError

from . import inputs

log = logging.getLogger("cosmos.app")

MAX_SEED = 2**32 - 1
MODEL_QUEUE = "model"  # concurrency id shared by every event that runs the model: one model call at a time
MAX_GUIDANCE = 5.0     # the guidance slider's top (a checkpoint whose default is higher raises it)
STORY_CHECKPOINT = "assets/cosmos-story-cpu"   # the embedded prompt-conditioned checkpoint (issue 7)
AUTOENCODER_ONLY_NOTE = ("This checkpoint is an autoencoder only (it has no denoiser): it encodes, decodes, interpolates "
                         "(lerp / slerp) and draws the latent map. Generate, Denoising trajectory, Vary / edit and Infill "
                         "need a diffusion model: convert one with `--diffusion` (python -m train.convert_official), or "
                         "train one with the diffusion stage.")
UNCONDITIONAL_NOTE = ("This checkpoint is unconditional. Prompts need a conditional checkpoint: the embedded "
                      f"story-continuation one, `python app.py --checkpoint {STORY_CHECKPOINT}`, or your own "
                      "trained with the `story-cpu` preset (see README).")


DEFAULT_SETTING = "default"   # the sampler setting a checkpoint starts on (model_index.json's "sampling")
PAPER_SETTING = "paper"       # the paper's, where the checkpoint records it (``pipe.sampling_presets["paper"]``)


@dataclass(frozen=True)
class Limits:
    """Per-request caps, so one request cannot hold a 2-vCPU machine for long."""

    max_samples: int = 16
    max_steps: int = 500
    max_sample_steps: int = 16 * 200   # samples x steps in one request (~8 s on 2 CPU cores)
    max_points: int = 16               # interpolation points
    max_text_chars: int = 2_000        # longer input text is cut (the model reads 64-128 tokens anyway)
    max_map_texts: int = 32            # own texts overlaid on the latent map
    max_seconds: float = 60.0          # a request still running after this is stopped
    # the model's rate assumed when predicting a request's time (``ModelCost``): requests predicted to run past
    # ``max_seconds`` are refused before they start. bench.released measured the released-size model at an
    # effective 150-175 GFLOP/s on this idle 2-core CPU and 17-18 with a training run beside it (docs/benchmarks.md);
    # at 60 the paper's setting runs for 4 samples (23 s measured idle, predicted 58 s) and a 200-step streamed
    # trajectory (every step decoded) is refused; on a busy machine the runtime stop at max_seconds still holds.
    gflops: float = 60.0


@dataclass(frozen=True)
class ModelCost:
    """The work of one model call in GFLOP, 2 x parameters x vectors (attention scores left out), from the
    pipeline's public summary: enough to tell a 10-second request from a 2-minute one before it starts."""

    step: float        # one denoiser call on one sample (N latents); 0 without a denoiser
    decode: float      # one decoder pass on one sample (L canvas tokens, then the vocabulary head)

    @classmethod
    def of(cls, pipe: CosmosPipeline) -> "ModelCost":
        info = pipe.summary()
        params = info.parameters
        head = max(params["head"], info.vocab_size * info.encoder_width)   # a tied head's weights count here too
        return cls(step=2 * params["denoiser"] * info.num_latents / 1e9,
                   decode=2 * (params["decoder"] + head) * info.max_length / 1e9)

    def seconds(self, samples: int, steps: int, decodes: int, gflops: float) -> float:
        """Predicted time of ``samples`` x ``steps`` denoiser calls and ``decodes`` decoder passes per sample."""
        return samples * (steps * self.step + decodes * self.decode) / gflops


@dataclass
class Produced:
    """What a tab last made, kept in the session (``gr.State``) for the latent map's overlays."""

    texts: list[str]
    latents: torch.Tensor              # (K, N, d) autoencoder-space latents of ``texts``


@dataclass
class Playground:
    pipe: CosmosPipeline
    source: str                        # what the user asked for: folder or hub id
    folder: Path                       # where it was loaded from
    card: str                          # the checkpoint's model card (README.md), "" if it has none
    latent_map: LatentMap | None
    map_problem: str | None            # why there is no latent map, when there is none
    load_seconds: float
    limits: Limits = Limits()
    notice: str | None = None          # shown above the tabs, e.g. why another checkpoint than asked is loaded

    def __post_init__(self) -> None:
        self.cost = ModelCost.of(self.pipe)

    @property
    def can_generate(self) -> bool:
        """False on an autoencoder-only checkpoint: no Generate, Denoising trajectory, Vary or Infill tab."""
        return self.pipe.can_generate

    def require_generation(self) -> None:
        """Refuse a sampling request on an autoencoder-only checkpoint, saying why (its API has no such endpoint)."""
        if not self.can_generate:
            raise inputs.refuse(AUTOENCODER_ONLY_NOTE)

    @property
    def name(self) -> str:
        """The checkpoint as users should read it: a path inside this repository is shown relative to it."""
        try:
            return Path(self.source).resolve().relative_to(DEFAULT_CHECKPOINT.parent.parent).as_posix()
        except (ValueError, OSError):
            return self.source

    def sampler_settings(self, steps: object, sampler: object, seed: object) -> tuple[int, str, int]:
        """Checked (steps, sampler, seed) of a sampling request."""
        return (inputs.integer(steps, "Steps", 1, self.limits.max_steps),
                inputs.choice(sampler, "Sampler", list(SAMPLER_LABELS)), inputs.integer(seed, "Seed", 0, MAX_SEED))

    @property
    def default_steps(self) -> int:
        """The checkpoint's sampler steps (``model_index.json``: the measured fastest setting that matches
        the paper's 200-step SDE, ``bench.steps``), capped by the app's limit."""
        return min(self.pipe.sampling.steps, self.limits.max_steps)

    @property
    def default_sampler(self) -> str:
        return self.pipe.sampling.sampler

    @property
    def supports_prompts(self) -> bool:
        return self.pipe.supports_prompts

    @property
    def guidance_default(self) -> float:
        return float(self.pipe.sampling.guidance_scale)

    @property
    def max_guidance(self) -> float:
        return max(MAX_GUIDANCE, self.guidance_default)

    @property
    def prompt_tokens(self) -> int | None:
        """The most prompt tokens the denoiser reads ([CLS] and [SEP] included); None if it takes no prompt."""
        return self.pipe.prompt_max_tokens

    def prompt_settings(self, prompt: object, guidance_scale: object) -> tuple[str | None, float | None]:
        """Checked (prompt, guidance scale) of a sampling request; (None, None) samples unconditionally.

        An empty or blank prompt (or None) means no prompt, whatever the checkpoint; a prompt to an
        unconditional checkpoint is refused. ``guidance_scale`` None means the checkpoint's default;
        any other value is range-checked even without a prompt (where it is not used).
        """
        prompt = inputs.optional_text(prompt, "Prompt", self.limits.max_text_chars)
        if prompt and not self.supports_prompts:
            raise inputs.refuse("Prompt must be empty here. " + UNCONDITIONAL_NOTE)
        scale = (self.guidance_default if guidance_scale is None
                 else inputs.number(guidance_scale, "Guidance scale", 0.0, self.max_guidance))
        return (prompt, scale) if prompt else (None, None)

    @property
    def paper_setting(self) -> SamplingConfig | None:
        """The setting the paper's figures were measured with, where the checkpoint records one (a converted
        release: 200 Euler-Maruyama steps from t = 1 to 0.05, returning the last step's mean); else None."""
        return self.pipe.sampling_presets.get(PAPER_SETTING)

    def setting_label(self, setting: str) -> str:
        """A sampler setting in words: its time grid, where it stops and what it returns."""
        cfg = self.paper_setting if setting == PAPER_SETTING else self.pipe.sampling
        grid = "uniform in t" if cfg.time_grid == "uniform" else f"{cfg.time_grid} time grid"
        end = "the last x0 estimate" if cfg.final_x0 else "the last step's mean"
        return f"{cfg.steps} {cfg.sampler.upper()} steps, {grid}, t 1 → {cfg.t_end:g}, returns {end}"

    def sampling_pipe(self, setting: object) -> CosmosPipeline:
        """The pipeline a request runs on: the loaded one, or (``PAPER_SETTING``) the same models with the paper's
        time grid, end time and final return; the request's sampler and steps are its own either way."""
        offered = [DEFAULT_SETTING] + ([PAPER_SETTING] if self.paper_setting is not None else [])
        setting = DEFAULT_SETTING if setting is None else inputs.choice(setting, "Setting", offered)
        if setting == DEFAULT_SETTING:
            return self.pipe
        return self.pipe.with_sampling(PAPER_SETTING)  # the same models; the request passes its own sampler and steps

    def check_work(self, samples: int, steps: int, decode_every_step: bool = False) -> None:
        """Refuse requests over the samples x steps budget, or predicted (``ModelCost``) to run past
        ``limits.max_seconds`` on this model, saying what would fit. ``decode_every_step``: the request decodes
        every step's x0 estimate (a streamed trajectory), not only the end."""
        lim = self.limits
        if samples * steps > lim.max_sample_steps:
            raise inputs.refuse(f"{samples} samples x {steps} steps is more than this server runs per request "
                           f"({lim.max_sample_steps:,} sample-steps): use at most "
                           f"{lim.max_sample_steps // samples} steps for {samples} samples.")
        predicted = self.cost.seconds(samples, steps, steps + 1 if decode_every_step else 1, lim.gflops)
        if predicted > lim.max_seconds:      # the most steps k with samples x (k per_step + one decode) in the limit
            per_step = self.cost.step + (self.cost.decode if decode_every_step else 0.0)
            fit = int((lim.max_seconds * lim.gflops / samples - self.cost.decode) // per_step)
            what = f"{samples} sample{'s' if samples > 1 else ''} x {steps} steps"
            advice = (f"use at most {fit} steps for {samples} sample{'s' if samples > 1 else ''}" if fit >= 1
                      else "use fewer samples")
            raise inputs.refuse(f"{what} would run for about {predicted:.0f} s on this model here (at "
                                f"{lim.gflops:g} GFLOP/s), past the server's {lim.max_seconds:g} s per request: {advice}.")


    def step_callback(self, progress: gr.Progress | None, desc: str) -> Callable[[int, int], None]:
        """A pipeline ``progress(done, total)`` callback that drives the progress bar and stops the
        request (``gr.Error``) once it has run for ``limits.max_seconds``."""
        deadline = time.monotonic() + self.limits.max_seconds

        def report(done: int, total: int) -> None:
            if time.monotonic() > deadline:
                raise inputs.refuse(f"This request ran past the server's {self.limits.max_seconds:g} s limit and was "
                               "stopped: use fewer samples or steps.")
            if progress is not None:
                progress((done, total), desc=desc)
        return report


def paper_note(pipe: CosmosPipeline) -> str:
    """The info line's note on a request run with the paper's setting (``Playground.sampling_pipe``)."""
    end = "the last x0 estimate" if pipe.sampling.final_x0 else "the last step's mean"
    return f"The paper's setting: t from 1 to {pipe.sampling.t_end:g}, returning {end}."


def load_playground(name_or_path: str | os.PathLike, limits: Limits = Limits()) -> Playground:
    """Load a pipeline (folder or hub id) with its card and latent map; raises CheckpointError if broken.

    The stored map is drawn as it is and places new points without a refit (``cosmos.projection``).
    """
    start = time.perf_counter()
    pipe = CosmosPipeline.from_pretrained(name_or_path)
    folder = pipe.folder
    card_path = folder / "README.md"
    card = card_path.read_text(encoding="utf-8", errors="replace") if card_path.is_file() else ""
    latent_map, problem = None, None
    try:
        latent_map = LatentMap.load(folder, fingerprint=pipe.fingerprint)
    except LatentMapError as err:
        problem = str(err)
        log.warning("no latent map: %s", problem)
    return Playground(pipe, str(name_or_path), folder, card, latent_map, problem,
                      time.perf_counter() - start, limits)


