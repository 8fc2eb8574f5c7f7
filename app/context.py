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

from cosmos import SAMPLER_LABELS, CosmosPipeline
from cosmos.checkpoint import DEFAULT_CHECKPOINT
from cosmos.projection import LatentMap, LatentMapError

from . import inputs

log = logging.getLogger("cosmos.app")

MAX_SEED = 2**32 - 1
MODEL_QUEUE = "model"  # concurrency id shared by every event that runs the model: one model call at a time
MAX_GUIDANCE = 5.0     # the guidance slider's top (a checkpoint whose default is higher raises it)
STORY_CHECKPOINT = "assets/cosmos-story-cpu"   # the embedded prompt-conditioned checkpoint (issue 7)
UNCONDITIONAL_NOTE = ("This checkpoint is unconditional. Prompts need a conditional checkpoint: the embedded "
                      f"story-continuation one, `python app.py --checkpoint {STORY_CHECKPOINT}`, or your own "
                      "trained with the `story-cpu` preset (see README).")


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

    def check_work(self, samples: int, steps: int) -> None:
        """Refuse requests over the samples x steps budget, saying what would fit."""
        if samples * steps > self.limits.max_sample_steps:
            raise inputs.refuse(f"{samples} samples x {steps} steps is more than this server runs per request "
                           f"({self.limits.max_sample_steps:,} sample-steps): use at most "
                           f"{self.limits.max_sample_steps // samples} steps for {samples} samples.")


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


