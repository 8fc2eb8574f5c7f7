"""Figures computed the same way in training (held-out evaluation) and in the benchmarks."""

from __future__ import annotations

import re
from typing import Iterable

import torch


def token_accuracy(batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> float:
    """Share of real positions predicted right, over ``(predicted, target, mask)`` batches, each (B, L).

    Cosmos's reconstruction accuracy (paper Sec. 6): ``predicted`` are the decoder's argmax token ids of
    decode(encode(text)), ``target`` the true ids, ``mask`` the non-pad positions ([CLS]/[SEP] included).
    A token outside a restricted output head is never predicted, so it counts as an error.
    """
    correct = total = 0
    for predicted, target, mask in batches:
        correct += int(((predicted == target) & mask).sum())
        total += int(mask.sum())
    return correct / max(total, 1)



def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks of ``text``, in order (the benchmarks' word split)."""
    return re.findall(r"\w+|[^\w\s]", text.lower())


def _word_runs(text: str) -> tuple[int, int, int]:
    """(adjacent pairs of the same word, adjacent word pairs, longest run of one word) of ``text``,
    punctuation skipped: "ben. ben ben" has 2 repeated pairs out of 2 and a run of 3."""
    seq = [w for w in words(text) if w[0].isalnum() or w[0] == "_"]
    same, best, run = 0, min(len(seq), 1), 1
    for prev, word in zip(seq, seq[1:]):
        run = run + 1 if word == prev else 1
        same += word == prev
        best = max(best, run)
    return same, max(len(seq) - 1, 0), best


def repetition(texts: list[str], run_length: int = 4) -> dict[str, float]:
    """How far samples fall into one repeated word ("ben ben ben ben", issue 27), punctuation skipped:

    ``adjacent_repeats``  share of adjacent word pairs, over all texts, that are the same word
    ``run_share``         share of texts holding a run of ``run_length`` or more of one word
    ``longest_run``       the longest such run in any text
    """
    counts = [_word_runs(t) for t in texts]
    pairs = sum(c[1] for c in counts)
    return {"adjacent_repeats": sum(c[0] for c in counts) / max(pairs, 1),
            "run_share": sum(c[2] >= run_length for c in counts) / max(len(texts), 1),
            "longest_run": float(max((c[2] for c in counts), default=0))}


def mid_text_start_share(first_pieces: list[str]) -> float:
    """Share of samples that begin mid-text (issue 27): their first word piece is the tail of a word
    ("##ed") or holds no letter or digit (", . ” ..."). ``first_pieces`` is each sample's first tokenizer
    piece after [CLS] (``CosmosPipeline.ids_to_tokens``); empty samples are left out."""
    pieces = [p for p in first_pieces if p]
    cut = sum(p.startswith("##") or not any(c.isalnum() for c in p) for p in pieces)
    return cut / max(len(pieces), 1)
