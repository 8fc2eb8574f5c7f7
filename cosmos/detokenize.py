"""Decoded token ids -> text: where a decoded row's text starts and stops, and how its wordpieces join.

The decoder predicts a token at every one of the L positions. A row's text is what lies after a leading
[CLS] and before the first [SEP], without [PAD] / [CLS] / [MASK]; the tokenizer detokenises it. The
trajectory view shows the same tokens as separate pieces (:func:`join_wordpieces`), joined the way a
WordPiece tokenizer joins them ("##" continues the previous word).
"""

from __future__ import annotations

import torch


class Detokenizer:
    def __init__(self, tokenizer, cls_token_id: int, sep_token_id: int, pad_token_id: int, mask_token_id: int):
        self.tokenizer = tokenizer
        self.cls, self.sep = cls_token_id, sep_token_id
        self.dropped = (pad_token_id, cls_token_id, mask_token_id)

    def kept_positions(self, row: list[int]) -> list[int]:
        """Positions of a decoded row that make its text."""
        start = 1 if row and row[0] == self.cls else 0
        end = row.index(self.sep, start) if self.sep in row[start:] else len(row)
        return [j for j in range(start, end) if row[j] not in self.dropped]

    def tokens(self, token_ids: torch.Tensor) -> list[list[tuple[int, str]]]:
        """Per row of (B, L) ids, (position, wordpiece) of the tokens :meth:`texts` turns into text."""
        return [[(j, self.tokenizer.convert_ids_to_tokens(row[j])) for j in self.kept_positions(row)]
                for row in token_ids.tolist()]

    def texts(self, token_ids: torch.Tensor) -> list[str]:
        """Per row of (B, L) ids, its text: cut at the first [SEP] (after a leading [CLS]) and detokenised."""
        return [self.tokenizer.decode([row[j] for j in self.kept_positions(row)], skip_special_tokens=False,
                                      clean_up_tokenization_spaces=True).strip()
                for row in token_ids.tolist()]


def join_wordpieces(wordpieces: list[str]) -> list[str]:
    """Each wordpiece as it reads in running text: a "##" piece continues its word, the others start a new
    one (a space before all but the first). Concatenated, they spell the row's words."""
    return [p[2:] if p.startswith("##") else (p if k == 0 else " " + p) for k, p in enumerate(wordpieces)]
