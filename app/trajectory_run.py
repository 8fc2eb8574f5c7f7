"""One denoising run of the trajectory tab, kept in the session: the tab streams it and scrubs through it,
the latent map draws its path."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cosmos import join_wordpieces

from . import prompt_box
from .chunks import changed_chunks_text
from .plots import trajectory_figure

CHANGED = "changed"   # the label of tokens that changed since the previous step


@dataclass
class Trajectory:
    """One finished (or running) denoising run of a single sample."""

    steps: int
    sampler: str
    seed: int
    prompt: str | None = None                             # the prompt it continues (None: unconditional)
    guidance_scale: float | None = None                   # with a prompt: the classifier-free guidance weight
    pieces: list[list[tuple[str, bool]]] = field(default_factory=list)  # per step: (wordpiece, changed)
    changed: list[int] = field(default_factory=list)      # per step: tokens changed since the previous step
    sigmas: list[float] = field(default_factory=list)     # per step: σ(t) after the step
    x0: list[torch.Tensor] = field(default_factory=list)  # per step: (N, d) x0 estimate, autoencoder space
    chunk_size: int | None = None                         # chunk-local checkpoints: tokens per latent (else None)
    chunk_changes: list[list[int]] = field(default_factory=list)   # per step, with chunk_size: changed tokens per chunk
    distance: list[float] | None = None                   # per step: ‖x0_i − z_final‖ / ‖z_final‖
    final_text: str = ""
    final_latent: torch.Tensor | None = None               # (N, d)

    def highlighted(self, i: int) -> list[tuple[str, str | None]]:
        """Step i's text for ``gr.HighlightedText``: the prompt (if any) labelled as such, then the
        wordpieces joined, changed ones labelled."""
        pieces = self.pieces[i]
        texts = join_wordpieces([piece for piece, _ in pieces])
        out = [(text, CHANGED if changed else None) for text, (_, changed) in zip(texts, pieces)]
        out = out or [("(empty: [SEP] came first)", None)]
        return [(f"{self.prompt} → ", prompt_box.PROMPT_LABEL), *out] if self.prompt else out

    def text(self, i: int) -> str:
        """Step i's decoded x0 estimate as plain text (without the prompt)."""
        return "".join(piece for piece, label in self.highlighted(i) if label != prompt_box.PROMPT_LABEL)

    def figure(self, marker: int | None = None):
        """Charts of the steps so far; ``marker`` (0-based step index) draws a line at that step."""
        return trajectory_figure(range(1, len(self.changed) + 1), self.changed, self.sigmas, self.distance,
                                 self.steps, None if marker is None else marker + 1,
                                 self.chunk_changes if self.chunk_size else None)

    def caption(self, i: int) -> str:
        caption = (f"step **{i + 1} / {self.steps}** · σ(t) = {self.sigmas[i]:.3f} · "
                   f"{self.changed[i]} token(s) changed")
        return caption + f" · {changed_chunks_text(self.chunk_changes[i])}" if self.chunk_size else caption
