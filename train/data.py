"""Data: texts from ``datasets`` -> token windows of length L -> (optionally) frozen-encoder features.

Each text is tokenised once (``Dataset.map``, batched), cut into windows of L - 2 tokens with
``stride`` (overlap lets a small corpus yield more distinct windows), and framed as
``[CLS] window [SEP] [PAD]...``. Windows and features are cached under ``<run_dir>/cache/`` as
safetensors, keyed by the sources' settings, the local files' paths, sizes and modification
times, L, the stride and the encoder (features: by the windows' contents), so a rerun skips the work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from cosmos.config import ConfigError
from cosmos.encoder import FrozenEncoder

from .config import DataConfig, DataSource
from .loop import save_atomic


class DataError(RuntimeError):
    """A data source is missing, unreadable, or lacks the configured column."""


def load_texts(source: DataSource, split: str) -> list[str]:
    """One split of one source as a list of non-empty strings (capped at ``max_texts``)."""
    import datasets

    if source.data_files is not None:
        if split not in source.data_files:
            raise DataError(f"data source {source.path!r} has no file for split {split!r} "
                            f"(data_files has {sorted(source.data_files)})")
        missing = [f for f in [source.data_files[split]] if "://" not in f and not Path(f).is_file()]
        if missing:
            raise DataError(f"data file {missing[0]} does not exist (split {split!r}); check data_files "
                            "in the config (relative paths are relative to the directory you run from)")
    datasets.disable_progress_bars()
    try:
        files = {split: source.data_files[split]} if source.data_files else None
        ds = datasets.load_dataset(source.path, source.name, data_files=files, split=split)
    except Exception as err:  # datasets raises many types: FileNotFound, DatasetNotFound, ConnectionError
        raise DataError(f"could not load split {split!r} of {source.path!r}: {type(err).__name__}: {err}") from err
    if source.text_column not in ds.column_names:
        raise DataError(f"{source.path!r} split {split!r} has no column {source.text_column!r} "
                        f"(columns: {ds.column_names})")
    if source.max_texts is not None:
        ds = ds.select(range(min(source.max_texts, len(ds))))
    return [t for t in ds[source.text_column] if isinstance(t, str) and t.strip()]


def windows_from_texts(texts: list[str], tokenizer, max_length: int, stride: int) -> torch.Tensor:
    """Token windows (M, L) int64: ``[CLS] w [SEP] [PAD]...`` with |w| <= L - 2, consecutive windows of
    a text starting ``stride`` tokens apart. Texts shorter than a window give one padded window."""
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


def _cache_key(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


def load_windows(data: DataConfig, split: str, encoder: FrozenEncoder, max_length: int,
                 cache_dir: Path) -> torch.Tensor:
    """All sources' windows for one split, (M, L) int64, cached."""
    split_name = data.splits.get(split, split)
    stride = data.stride or max(1, (max_length - 2) // 2)
    if stride > max_length - 2:
        raise ConfigError(f"stride {stride} exceeds the window body L - 2 = {max_length - 2}")
    local = [(str(Path(f).resolve()), Path(f).stat().st_size, Path(f).stat().st_mtime_ns)
             for s in data.sources for f in (s.data_files or {}).values() if Path(f).is_file()]
    key = _cache_key([asdict(s) for s in data.sources], local, split_name, max_length, stride,
                     encoder.name_or_path, encoder.vocab_size)
    path = cache_dir / f"windows-{split}-{key}.safetensors"
    if path.is_file():
        return load_file(str(path))["input_ids"]
    parts = []
    for source in data.sources:
        texts = load_texts(source, split_name)
        parts.append(windows_from_texts(texts, encoder.tokenizer, max_length, stride))
    windows = torch.cat(parts)
    if len(windows) == 0:
        raise DataError(f"split {split!r} yielded no windows: the data sources are empty")
    save_atomic({"input_ids": windows.contiguous()}, path)
    return windows


def cached_features(encoder: FrozenEncoder, windows: torch.Tensor, cache_dir: Path,
                    device: str | torch.device = "cpu") -> torch.Tensor:
    """:func:`encode_features` cached under a name derived from the windows' contents and the encoder."""
    digest = hashlib.sha1(windows.numpy().tobytes() + encoder.name_or_path.encode()).hexdigest()[:12]
    return encode_features(encoder, windows, encoder.tokenizer.pad_token_id,
                           cache_dir / f"features-{digest}.safetensors", device=device)


@torch.inference_mode()
def encode_features(encoder: FrozenEncoder, windows: torch.Tensor, pad_id: int, cache_path: Path | None,
                    batch_size: int = 128, device: str | torch.device = "cpu") -> torch.Tensor:
    """Frozen-encoder features (M, L, D) in fp16 for all windows, cached when ``cache_path`` is given."""
    if cache_path is not None and cache_path.is_file():
        features = load_file(str(cache_path))["features"]
        if features.shape[:2] == windows.shape:
            return features
    encoder = encoder.to(device)
    out = torch.empty(*windows.shape, encoder.hidden_size, dtype=torch.float16)
    for start in tqdm(range(0, len(windows), batch_size), desc="encoding features", unit="batch"):
        ids = windows[start:start + batch_size].to(device)
        out[start:start + len(ids)] = encoder(ids, ids != pad_id).to("cpu", torch.float16)
    if cache_path is not None:
        save_atomic({"features": out}, cache_path)
    return out
