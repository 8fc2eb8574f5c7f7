"""Training windows: texts cut into ``[CLS] tokens [SEP] [PAD]...`` rows of L tokens; and (prompt,
continuation) pairs cut after a text's first sentences.

Both training (``train.data.load_windows``) and the quality benchmark (held-out windows) cut texts
here, so what a model learns to generate and what its samples are compared with are framed alike.
Consecutive windows of a long text overlap: by default they start half a window body apart.
"""

from __future__ import annotations

import bisect
import re

import torch


def default_stride(max_length: int) -> int:
    """Half a window body, (L - 2) / 2 tokens (50% overlap): the stride when a config sets none."""
    return max(1, (max_length - 2) // 2)


WINDOW_STARTS = ("any", "sentence")  # where a training window may begin (DataConfig.window_start)


def windows_from_texts(texts: list[str], tokenizer, max_length: int, stride: int | None = None,
                       start: str = "any") -> torch.Tensor:
    """Token windows (M, L) int64: ``[CLS] w [SEP] [PAD]...`` with |w| <= L - 2. Texts shorter than a
    window give one padded window.

    ``start="any"``: consecutive windows of a text start ``stride`` tokens apart (None:
    :func:`default_stride`). ``start="sentence"``: every window starts where a sentence starts (the
    first at the text's start, each next one at the first sentence start at least ``stride`` tokens after
    the previous window's), so a model trained on them writes text that reads as the beginning of
    something, never from the middle of a word or sentence (issue 27).
    """
    if start not in WINDOW_STARTS:
        raise ValueError(f"start must be one of {list(WINDOW_STARTS)}, got {start!r}")
    stride = stride or default_stride(max_length)
    body = max_length - 2
    encoded = tokenizer(texts, add_special_tokens=False, verbose=False,
                        return_offsets_mapping=start == "sentence")
    rows = []
    for k, tokens in enumerate(encoded["input_ids"]):
        if start == "sentence":
            starts = _sentence_window_starts(texts[k], encoded["offset_mapping"][k], stride)
        elif len(tokens) > body:
            starts = range(0, max(1, len(tokens) - body + stride), stride)
        else:
            starts = [0]
        for first in starts:
            chunk = tokens[first:first + body]
            if not chunk:
                continue
            row = [tokenizer.cls_token_id, *chunk, tokenizer.sep_token_id]
            rows.append(row + [tokenizer.pad_token_id] * (max_length - len(row)))
    return torch.tensor(rows, dtype=torch.long).reshape(-1, max_length)


def sentence_starts(text: str) -> list[int]:
    """Character offsets where the sentences of ``text`` start (0 first), by :data:`SENTENCE_END`,
    outside quoted speech: '"Hi, I am Fin. Do you want to play?" asked the fish.' starts once, at its
    opening quote, not at "Do" (a window from there would open with an unbalanced closing quote)."""
    starts = [0]
    for match in SENTENCE_END.finditer(text):
        nxt = match.end() + len(text[match.end():]) - len(text[match.end():].lstrip())
        before = text[:nxt]
        if nxt < len(text) and before.count('"') % 2 == 0 and before.count("\u201c") <= before.count("\u201d"):
            starts.append(nxt)
    return starts


def _sentence_window_starts(text: str, offsets: list[tuple[int, int]], stride: int) -> list[int]:
    """Token indices of the windows' starts: sentence starts, greedily at least ``stride`` tokens apart."""
    token_starts = [a for a, _ in offsets]
    chosen: list[int] = []
    for char in sentence_starts(text):
        index = bisect.bisect_left(token_starts, char)   # the first token at or after the sentence start
        if index < len(token_starts) and (not chosen or index - chosen[-1] >= stride):
            chosen.append(index)
    return chosen or [0]


# A sentence ends at . ! ? (and any closing quotes or brackets) when the next one starts with a capital
# or a digit, possibly after an opening quote: '"Hi!" said Tom.' stays one sentence, and so do the
# common title abbreviations ("Mr. Brown").
SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)[.!?]+[\"'\u201d\u2019)\]]*"
                           r"(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")


def split_after_sentences(text: str, k: int) -> tuple[str, str]:
    """(first ``k`` sentences, the rest) of a text, both stripped; the rest is "" if it has <= k sentences."""
    for count, match in enumerate(SENTENCE_END.finditer(text), start=1):
        if count == k:
            return text[:match.end()].strip(), text[match.end():].strip()
    return text.strip(), ""
