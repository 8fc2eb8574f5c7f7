"""Decoded token ids -> text: where a decoded row's text starts and stops, and how its wordpieces join.

The decoder predicts a token at every one of the L positions. A row's text is what lies after a leading
[CLS] and before the first [SEP], without [PAD] / [CLS] / [MASK]; the tokenizer detokenises it. The
trajectory view shows the same tokens as separate pieces (:func:`join_wordpieces`), joined the way a
WordPiece tokenizer joins them ("##" continues the previous word).

With an uncased tokenizer and a casing table (``casing.json``, :mod:`cosmos.casing`), both the text and the
displayed pieces are put in their usual casing here, the one place ids become text; token ids are untouched.
A cased tokenizer's text is left as it decodes.
"""

from __future__ import annotations

import torch

from .casing import CasingTable, lowercases


class Detokenizer:
    def __init__(self, tokenizer, cls_token_id: int, sep_token_id: int, pad_token_id: int, mask_token_id: int,
                 casing: CasingTable | None = None):
        self.tokenizer = tokenizer
        self.cls, self.sep = cls_token_id, sep_token_id
        self.dropped = (pad_token_id, cls_token_id, mask_token_id)
        self.casing = casing                       # kept (and saved) as given; applied to uncased tokenizers only
        self.restores_casing = casing is not None and lowercases(tokenizer)

    def _cased(self, text: str) -> str:
        return self.casing.restore(text) if self.restores_casing else text

    def kept_positions(self, row: list[int]) -> list[int]:
        """Positions of a decoded row that make its text."""
        start = 1 if row and row[0] == self.cls else 0
        end = row.index(self.sep, start) if self.sep in row[start:] else len(row)
        return [j for j in range(start, end) if row[j] not in self.dropped]

    def tokens(self, token_ids: torch.Tensor) -> list[list[tuple[int, str]]]:
        """Per row of (B, L) ids, (position, wordpiece) of the tokens :meth:`texts` turns into text."""
        rows = []
        for row in token_ids.tolist():
            kept = self.kept_positions(row)
            pieces = self.tokenizer.convert_ids_to_tokens([row[j] for j in kept])
            rows.append(list(zip(kept, self._cased_pieces(pieces))))
        return rows

    def _cased_pieces(self, pieces: list[str]) -> list[str]:
        """``pieces`` in the casing :meth:`texts` gives their words (restoring keeps every piece's length)."""
        if not self.restores_casing:
            return pieces
        shown = join_wordpieces(pieces)
        cased, out, start = self._cased("".join(shown)), [], 0
        for piece, text in zip(pieces, shown):
            part = cased[start:start + len(text)]
            start += len(text)
            out.append("##" + part if piece.startswith("##") else part.lstrip(" "))
        return out

    def texts(self, token_ids: torch.Tensor) -> list[str]:
        """Per row of (B, L) ids, its text: cut at the first [SEP] (after a leading [CLS]), detokenised and,
        with a casing table, put in its usual casing."""
        return [self._cased(self.tokenizer.decode([row[j] for j in self.kept_positions(row)],
                                                  skip_special_tokens=False, clean_up_tokenization_spaces=True).strip())
                for row in token_ids.tolist()]


def join_wordpieces(wordpieces: list[str]) -> list[str]:
    """Each wordpiece as it reads in running text: a "##" piece continues its word, the others start a new
    one (a space before all but the first). Concatenated, they spell the row's words."""
    return [p[2:] if p.startswith("##") else (p if k == 0 else " " + p) for k, p in enumerate(wordpieces)]
