"""Training windows: texts cut into ``[CLS] tokens [SEP] [PAD]...`` rows of L tokens.

Both training (``train.data.load_windows``) and the quality benchmark (held-out windows) cut texts
here, so what a model learns to generate and what its samples are compared with are framed alike.
Consecutive windows of a long text overlap: by default they start half a window body apart.
"""

from __future__ import annotations

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
