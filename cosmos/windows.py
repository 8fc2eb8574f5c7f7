"""Training windows: texts cut into ``[CLS] tokens [SEP] [PAD]...`` rows of L tokens; and (prompt,
continuation) pairs cut after a text's first sentences.

Both training (``train.data.load_windows``) and the quality benchmark (held-out windows) cut texts
here, so what a model learns to generate and what its samples are compared with are framed alike.
Consecutive windows of a long text overlap: by default they start half a window body apart.
"""

from __future__ import annotations

import re

import torch


def default_stride(max_length: int) -> int:
    """Half a window body, (L - 2) / 2 tokens (50% overlap): the stride when a config sets none."""
    return max(1, (max_length - 2) // 2)


def windows_from_texts(texts: list[str], tokenizer, max_length: int, stride: int | None = None) -> torch.Tensor:
    """Token windows (M, L) int64: ``[CLS] w [SEP] [PAD]...`` with |w| <= L - 2, consecutive windows of
    a text starting ``stride`` tokens apart (None: :func:`default_stride`). Texts shorter than a window
    give one padded window."""
    stride = stride or default_stride(max_length)
    body = max_length - 2
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    rows = []
    for tokens in ids:
        starts = range(0, max(1, len(tokens) - body + stride), stride) if len(tokens) > body else [0]
        for start in starts:
            chunk = tokens[start:start + body]
            if not chunk:
                continue
            row = [tokenizer.cls_token_id, *chunk, tokenizer.sep_token_id]
            rows.append(row + [tokenizer.pad_token_id] * (max_length - len(row)))
    return torch.tensor(rows, dtype=torch.long).reshape(-1, max_length)


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
