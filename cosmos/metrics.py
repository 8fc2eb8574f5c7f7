"""Figures computed the same way in training (held-out evaluation) and in the benchmarks."""

from __future__ import annotations

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
