"""Checkpoints: a folder per component holding ``config.json`` + ``*.safetensors``. No pickle anywhere.

Saving goes through diffusers' ``ModelMixin.save_pretrained`` (config.json, safetensors, optional
sharding with an index). Loading is ours, so that every failure names what is wrong: a missing or
unparsable file, unknown or missing config fields, tensors missing / unexpected / of the wrong
shape, non-finite weights. All of these raise :class:`CheckpointError`.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .config import ConfigError, config_from_dict

WEIGHTS_PREFIX = "diffusion_pytorch_model"  # diffusers' file name for ModelMixin weights
SHARD_INDEX = f"{WEIGHTS_PREFIX}.safetensors.index.json"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, corrupt, or does not match the code's expectations."""


DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "cosmos-cpu-small"
"""The checkpoint this repository embeds: what the app and the benchmarks load unless told otherwise."""
CHECKPOINT_ENV = "COSMOS_CHECKPOINT"


def checkpoint_from_env(cli_value: str | None = None) -> str:
    """The checkpoint to load: the CLI flag, else $COSMOS_CHECKPOINT, else the embedded default."""
    return cli_value or os.environ.get(CHECKPOINT_ENV) or str(DEFAULT_CHECKPOINT)


def resolve_pretrained(name_or_path: str | os.PathLike) -> Path:
    """A local folder as is; otherwise a Hugging Face hub repo id, downloaded (safetensors + json only)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.is_file():
        raise CheckpointError(f"{name!r} is a file; give the checkpoint folder that contains model_index.json")
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise CheckpointError(f"checkpoint folder {name!r} does not exist")
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(repo_id=name, allow_patterns=["*.json", "*.safetensors", "*.md"]))
    except Exception as err:  # offline, unknown repo, auth: all mean "cannot get it"
        raise CheckpointError(f"{name!r} is not a local folder and could not be fetched from the "
                              f"Hugging Face hub ({type(err).__name__}: {err}). Give a local checkpoint "
                              "folder, or connect to the network and unset HF_HUB_OFFLINE.") from err


def count_parameters(module: torch.nn.Module | None, trainable_only: bool = False) -> int:
    """Number of parameters of a module (0 for None); ``trainable_only``: those with requires_grad."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


REDO = "re-export the checkpoint (`python -m train.export`) or download it again"
"""What to do about a damaged or incomplete checkpoint; ends every such message."""


def read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing ({what}): {REDO}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); the file is corrupt or truncated: {REDO}") from err
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} should hold a JSON object, found {type(value).__name__}: {REDO}")
    return value


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of one component (sharded through an index, or a single file)."""
    index_path = folder / SHARD_INDEX
    if index_path.is_file():
        index = read_json(index_path, "shard index")
        names = sorted(set(index.get("weight_map", {}).values()))
        missing = [n for n in names if not (folder / n).is_file()]
        if not names or missing:
            raise CheckpointError(f"{index_path} lists shard files that are missing: {missing or 'none listed'}: "
                                  f"{REDO}")
        return [folder / n for n in names]
    single = folder / f"{WEIGHTS_PREFIX}.safetensors"
    if single.is_file():
        return [single]
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")) or any(folder.glob("*.ckpt")):
        raise CheckpointError(f"{folder} only has pickle weights (.bin/.pt/.ckpt), which are never loaded "
                              "here; convert them to safetensors")
    raise CheckpointError(f"{folder} has no weights: expected {single.name} (or shards with {SHARD_INDEX}): {REDO}")


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for file in weight_files(folder):
        try:
            state.update(load_file(str(file), device="cpu"))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{file} cannot be read as safetensors ({err}); the file is corrupt or "
                                  f"truncated: {REDO}") from err
    return state


def _listing(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def check_state_dict(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], where: str) -> None:
    """Raise naming every missing, unexpected and wrongly shaped tensor, and any non-finite one."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [f"{k}: file {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
                  for k in sorted(set(expected) & set(found)) if found[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing tensors: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {_listing(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_listing(mismatched)}")
    if problems:
        raise CheckpointError(f"{where} does not match its config: " + "; ".join(problems)
                              + f". The weights were written for another config or were edited: {REDO}")
    bad = [k for k, v in found.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{where} has non-finite values (NaN/inf) in: {_listing(bad)}; "
                              f"the checkpoint is corrupt or diverged in training: {REDO}, from a healthy "
                              "training state")


def load_component(model_cls: type, config_cls: type, folder: str | os.PathLike) -> Any:
    """Build ``model_cls(config_cls(**config.json))`` and load its validated safetensors weights."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"component folder {folder} is missing: {REDO}")
    raw = read_json(folder / "config.json", f"the config of a {model_cls.__name__}")
    class_name = raw.get("_class_name")
    if class_name is not None and class_name != model_cls.__name__:
        raise CheckpointError(f"{folder / 'config.json'} describes a {class_name}, expected "
                              f"{model_cls.__name__}: {REDO}")
    try:
        model = model_cls(config_from_dict(config_cls, raw, where=str(folder / "config.json")))
    except (ConfigError, TypeError) as err:
        where = str(folder / "config.json")
        detail = str(err) if where in str(err) else f"{where}: {err}"
        raise CheckpointError(f"invalid config: {detail}. Use the version of cosmos that wrote it, or {REDO}") from err
    state = read_state_dict(folder)
    check_state_dict(model.state_dict(), state, str(folder))
    model.load_state_dict(state, strict=True)  # copies into the model's dtype (fp16 files load as fp32)
    return model.eval()


def save_component(model, folder: str | os.PathLike, *, dtype: torch.dtype | None = None,
                   max_shard_size: str | int = "10GB") -> None:
    """``model.save_pretrained`` (config.json + safetensors); ``dtype`` casts a copy's parameters
    (e.g. fp16); buffers (normalisation statistics, the [MASK] embedding) stay at full precision."""
    if dtype is not None:
        model = copy.deepcopy(model)
        for param in model.parameters():
            param.data = param.data.to(dtype)
    for stale in Path(folder).glob(f"{WEIGHTS_PREFIX}*.safetensors*"):  # an earlier (sharded) save
        stale.unlink()
    model.save_pretrained(str(folder), safe_serialization=True, max_shard_size=max_shard_size)
