"""Data: texts from ``datasets`` -> token windows of length L -> (optionally) frozen-encoder features.

Each text is tokenised once (``Dataset.map``, batched), cut into windows of L - 2 tokens with
``stride`` (overlap lets a small corpus yield more distinct windows), and framed as
``[CLS] window [SEP] [PAD]...`` (:mod:`cosmos.windows`, which the quality benchmark cuts with too). Windows and features are cached under ``<run_dir>/cache/`` as
safetensors, keyed by the sources' settings, the local files' paths, sizes and modification
times, L, the stride and the encoder (features: by the windows' contents), so a rerun skips the work.

Pair data (prompt-conditioned diffusion, :func:`load_pairs`): (source, target) texts from two columns
or from splitting a text after its first K sentences, tokenised to ``[CLS] source [SEP]`` (at most
``source_max_length`` tokens) and ``[CLS] target [SEP]`` (at most L tokens), cached the same way.
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
from cosmos.windows import default_stride, split_after_sentences, windows_from_texts

from .config import DataConfig, DataSource, PairDataConfig, PairSource
from .loop import save_atomic


class DataError(RuntimeError):
    """A data source is missing, unreadable, or lacks the configured column."""


def load_texts(source: DataSource, split: str) -> list[str]:
    """One split of one source as a list of non-empty strings (capped at ``max_texts``)."""
    ds = _load_split(source, split, [source.text_column], source.max_texts)
    return [t for t in ds[source.text_column] if isinstance(t, str) and t.strip()]


def _load_split(source: DataSource | PairSource, split: str, columns: list[str], limit: int | None):
    """One split of a source as a ``datasets.Dataset`` holding ``columns``, at most ``limit`` rows."""
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
    for column in columns:
        if column not in ds.column_names:
            raise DataError(f"{source.path!r} split {split!r} has no column {column!r} (columns: {ds.column_names})")
    return ds if limit is None else ds.select(range(min(limit, len(ds))))


def _cache_key(*parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


def _local_files(sources: list[DataSource] | list[PairSource]) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of the sources' local files: a cache key part that changes with them."""
    return [(str(Path(f).resolve()), Path(f).stat().st_size, Path(f).stat().st_mtime_ns)
            for s in sources for f in (s.data_files or {}).values() if Path(f).is_file()]


def load_windows(data: DataConfig, split: str, encoder: FrozenEncoder, max_length: int,
                 cache_dir: Path) -> torch.Tensor:
    """All sources' windows for one split, (M, L) int64, cached."""
    split_name = data.splits.get(split, split)
    stride = data.stride or default_stride(max_length)
    if stride > max_length - 2:
        raise ConfigError(f"stride {stride} exceeds the window body L - 2 = {max_length - 2}")
    key = _cache_key([asdict(s) for s in data.sources], _local_files(data.sources), split_name, max_length, stride,
                     encoder.name_or_path, encoder.vocab_size,
                     *([data.window_start] if data.window_start != "any" else []))  # "any": the keys of before
    path = cache_dir / f"windows-{split}-{key}.safetensors"
    if path.is_file():
        return load_file(str(path))["input_ids"]
    parts = []
    for source in data.sources:
        texts = load_texts(source, split_name)
        parts.append(windows_from_texts(texts, encoder.tokenizer, max_length, stride, start=data.window_start))
    windows = torch.cat(parts)
    if len(windows) == 0:
        raise DataError(f"split {split!r} yielded no windows: the data sources are empty")
    save_atomic({"input_ids": windows.contiguous()}, path)
    return windows


def load_pair_texts(source: PairSource, split: str) -> list[tuple[str, str]]:
    """One split of one pair source as (source, target) strings, both non-empty."""
    if source.split_sentences is not None:
        ds = _load_split(source, split, [source.text_column], source.max_pairs)
        pairs = [split_after_sentences(t, source.split_sentences) for t in ds[source.text_column]
                 if isinstance(t, str)]
    else:
        ds = _load_split(source, split, [source.source_column, source.target_column], source.max_pairs)
        pairs = list(zip(ds[source.source_column], ds[source.target_column]))
    return [(a.strip(), b.strip()) for a, b in pairs
            if isinstance(a, str) and isinstance(b, str) and a.strip() and b.strip()]


def held_out_prompts(data: PairDataConfig, split: str, count: int) -> list[str]:
    """The first ``count`` source texts of a split (across the pair sources, in order): prompts for
    the samples logged in training and shown in the model card."""
    prompts: list[str] = []
    for source in data.sources:
        prompts += [a for a, _ in load_pair_texts(source, data.splits.get(split, split))][:count - len(prompts)]
    return prompts


def load_pairs(data: PairDataConfig, split: str, encoder: FrozenEncoder, max_length: int, source_max_length: int,
               cache_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All pair sources for one split: source ids (M, S) and target ids (M, L), int64, cached.

    Both are framed like the pipeline frames text (:meth:`FrozenEncoder.tokenize`: [CLS] ... [SEP],
    padded, cut with [SEP] kept), so training sees prompts exactly as ``generate(prompt=...)`` does.
    """
    split_name = data.splits.get(split, split)
    key = _cache_key([asdict(s) for s in data.sources], _local_files(data.sources), split_name, max_length,
                     source_max_length, encoder.name_or_path, encoder.vocab_size)
    path = cache_dir / f"pairs-{split}-{key}.safetensors"
    if path.is_file():
        cached = load_file(str(path))
        return cached["source_ids"], cached["target_ids"]
    pairs = [pair for source in data.sources for pair in load_pair_texts(source, split_name)]
    if not pairs:
        raise DataError(f"split {split!r} yielded no (source, target) pairs: the pair sources are empty, or "
                        "their texts have no more than split_sentences sentences")
    sources, targets = zip(*pairs)
    source_ids = encoder.tokenize(list(sources), source_max_length).input_ids
    target_ids = encoder.tokenize(list(targets), max_length).input_ids
    save_atomic({"source_ids": source_ids.contiguous(), "target_ids": target_ids.contiguous()}, path)
    return source_ids, target_ids


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
