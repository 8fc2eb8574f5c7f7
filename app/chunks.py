"""The chunk view of a chunk-local checkpoint: latent i owns tokens [i r, (i + 1) r) of the tokenised row
(``CosmosPipeline.chunks``), so a text reads as N chunks that the Infill tab keeps or rewrites and the
Denoising trajectory tab names when their tokens change. Pure bookkeeping over the pipeline's public
surface; no model call.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from cosmos import CosmosPipeline, TextChunk, join_wordpieces

KEPT, REWRITTEN = "kept", "rewritten"          # the categories of an infilled text's tokens
KEPT_COLOR, REWRITTEN_COLOR = "#bbf7d0", "#fbcfe8"
AFTER_THE_END = "(after the end)"              # a chunk of padding only, after the text's [SEP]
PRESETS = ("continue", "write the beginning", "rewrite the middle")


def chunk_size(pipe: CosmosPipeline) -> int | None:
    """Tokens per latent (r) on a checkpoint that infills; None where no latent owns a span (or no denoiser)."""
    return pipe.chunk_size if pipe.supports_infill else None


def chunk_label(chunk: TextChunk) -> str:
    """How a chunk reads in the keep / rewrite list: its index and its tokens as running text."""
    words = "".join(join_wordpieces(chunk.tokens)).strip() if chunk.tokens else AFTER_THE_END
    return f"{chunk.index} · {words}"


def preset_keep(chunks: Sequence[TextChunk], preset: str) -> list[int]:
    """The chunks a preset keeps, of the n chunks that hold the text (h = ceil(n / 2) of them hold its first
    half; an odd n's middle chunk counts in both halves):

    - "continue": the first h chunks; the rest (padding included, room to go on) is rewritten;
    - "write the beginning": the text's chunks from n // 2 on (at least from 1) and the padding after them;
    - "rewrite the middle": the first and the last of the text's chunks and the padding after them.
    """
    text = [c.index for c in chunks if c.in_text]
    padding = [c.index for c in chunks if not c.in_text and (not text or c.index > text[-1])]
    n = len(text)
    if preset == "continue":
        return text[:math.ceil(n / 2)]
    if preset == "write the beginning":
        return text[max(1, n // 2):] + padding
    if preset == "rewrite the middle":
        return sorted({*text[:1], *text[-1:]}) + padding
    raise ValueError(f"unknown preset {preset!r}; the presets are {', '.join(PRESETS)}")


def labelled_rows(pipe: CosmosPipeline, token_ids: torch.Tensor, kept: Sequence[int], r: int,
                  names: Sequence[str]) -> list[tuple[str, str | None]]:
    """Rows of (B, L) ids for one ``gr.HighlightedText``: per row its name, then its wordpieces as running
    text, each labelled kept or rewritten by the chunk that holds it; rows end with a line break."""
    kept_set, out = set(kept), []
    for name, row in zip(names, pipe.ids_to_tokens(token_ids)):
        out.append((f"{name}: ", None))
        texts = join_wordpieces([piece for _, piece in row])
        out += [(text, KEPT if j // r in kept_set else REWRITTEN) for text, (j, _) in zip(texts, row)]
        if not row:
            out.append(("(empty: [SEP] came first)", None))
        out.append(("\n", None))
    return out


def changed_per_chunk(pieces: Sequence[tuple[int, str]], changed: Sequence[bool], r: int,
                      num_chunks: int) -> list[int]:
    """How many of the shown tokens (``pieces``: (position, wordpiece)) changed, per chunk."""
    counts = [0] * num_chunks
    for (j, _), flag in zip(pieces, changed):
        if flag:
            counts[j // r] += 1
    return counts


def changed_chunks_text(counts: Sequence[int]) -> str:
    """"chunks changed: 2, 5" (or "none") for a caption."""
    names = [str(i) for i, count in enumerate(counts) if count]
    return "chunks changed: " + (", ".join(names) or "none")
