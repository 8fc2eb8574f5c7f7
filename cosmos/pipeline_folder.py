"""The pipeline folder format (``CosmosPipeline.save_pretrained`` / ``from_pretrained``), and its versions.

    model_index.json            format version, schedule and sampler defaults, named sampler settings
                                (``sampling_presets``, optional), which components exist
    autoencoder/config.json     + diffusion_pytorch_model.safetensors (feature stats, encoder id inside)
    denoiser/config.json        + diffusion_pytorch_model.safetensors (latent stats inside); optional
    card.json, README.md        the model card (``cosmos.card``), optional
    casing.json                 usual casing for an uncased tokenizer's text (``cosmos.casing``), optional
    latent_map/                 the stored UMAP of reference latents (``cosmos.projection``), optional
    encoder/ (any name)         the frozen encoder and its tokenizer, when the autoencoder's ``encoder`` is a
                                relative path naming a folder here (a converted checkpoint: ``cosmos.official``);
                                it resolves against this folder, wherever the folder is and whatever the CWD

diffusers keeps the same split: ``model_index.json`` names the components, each in its own folder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .autoencoder import CosmosAutoencoder
from .casing import CasingTable
from .checkpoint import CheckpointError, load_component, read_json, save_component
from .config import (FORMAT_VERSION, AutoencoderConfig, ConfigError, DenoiserConfig, SamplingConfig,
                     ScheduleConfig, config_from_dict, saved_dict, to_dict)
from .denoiser import CosmosDenoiser

INDEX = "model_index.json"


@dataclass
class PipelineParts:
    """What a pipeline folder holds, loaded and checked (the frozen encoder is loaded by name, not stored)."""

    autoencoder: CosmosAutoencoder
    denoiser: CosmosDenoiser | None
    schedule: ScheduleConfig
    sampling: SamplingConfig
    casing: CasingTable | None = None
    # named sampler settings besides the default, e.g. "paper": the setting the paper's figures were measured with
    sampling_presets: dict[str, SamplingConfig] = field(default_factory=dict)


def _check_version(folder: Path, version) -> None:
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
        action = ("update this code (`git pull`) to a version that reads it, or re-export the checkpoint "
                  "with this version" if newer else "re-export it with this version (`python -m train.export`)")
        raise CheckpointError(f"{folder} was written in checkpoint format {version!r}; this version of "
                              f"cosmos reads format {FORMAT_VERSION}: {action}.")


def _in_folder_encoder(folder: Path, autoencoder: CosmosAutoencoder) -> None:
    """Point ``autoencoder.cfg.encoder`` at the folder's own encoder when it names one by a relative path.

    Only the in-memory config changes: the saved ``config.json`` keeps the relative name, so the folder
    stays valid when moved or copied."""
    name = autoencoder.cfg.encoder
    inside = folder / name
    if not Path(name).is_absolute() and not name.startswith("~") and (inside / "config.json").is_file():
        autoencoder.cfg = dataclasses.replace(autoencoder.cfg, encoder=str(inside.resolve()))


def _read_presets(value) -> dict[str, SamplingConfig]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise CheckpointError(f"{INDEX}: sampling_presets must map names to sampling objects")
    return {name: config_from_dict(SamplingConfig, v, where=f"{INDEX} sampling_presets.{name}")
            for name, v in value.items()}


def read_pipeline_folder(folder: Path) -> PipelineParts:
    """Load a pipeline folder's components; raises CheckpointError saying what is wrong."""
    index = read_json(folder / INDEX, f"not a Cosmos pipeline folder (no {INDEX})")
    _check_version(folder, index.get("format_version"))
    sections = {name: index.get(name, {}) for name in ("schedule", "sampling", "components")}
    wrong = [name for name, value in sections.items() if not isinstance(value, dict)]
    if wrong:
        raise CheckpointError(f"{folder / INDEX}: section(s) {wrong} must be JSON objects")
    try:
        schedule = config_from_dict(ScheduleConfig, sections["schedule"], where=f"{INDEX} schedule")
        sampling = config_from_dict(SamplingConfig, sections["sampling"], where=f"{INDEX} sampling")
        presets = _read_presets(index.get("sampling_presets", {}))
    except (ConfigError, TypeError) as err:
        raise CheckpointError(str(err)) from err
    autoencoder = load_component(CosmosAutoencoder, AutoencoderConfig, folder / "autoencoder")
    _in_folder_encoder(folder, autoencoder)
    denoiser = None
    if sections["components"].get("denoiser"):
        denoiser = load_component(CosmosDenoiser, DenoiserConfig, folder / "denoiser")
    return PipelineParts(autoencoder, denoiser, schedule, sampling, CasingTable.load(folder), presets)


def write_pipeline_folder(folder: Path, parts: PipelineParts, class_name: str,
                          dtype: torch.dtype | None = None) -> None:
    """Write the components and ``model_index.json``; ``dtype=torch.float16`` halves the weights' size."""
    folder.mkdir(parents=True, exist_ok=True)
    save_component(parts.autoencoder, folder / "autoencoder", dtype=dtype)
    saved_name, loaded_from = parts.autoencoder.config["encoder"], parts.autoencoder.cfg.encoder
    if saved_name != loaded_from and Path(loaded_from).is_dir() and not (folder / saved_name).exists():
        # the source folder's own encoder (``_in_folder_encoder``) travels with the copy
        shutil.copytree(loaded_from, folder / saved_name)
    if parts.denoiser is not None:
        save_component(parts.denoiser, folder / "denoiser", dtype=dtype)
    def sampling_dict(sampling: SamplingConfig) -> dict:
        values = saved_dict(sampling)
        if parts.denoiser is None or not parts.denoiser.cfg.conditional:
            del values["guidance_scale"]   # the model_index.json of before prompts existed: older loaders read it
        return values

    sampling = sampling_dict(parts.sampling)
    index = {"_class_name": class_name, "format_version": FORMAT_VERSION,
             "components": {"autoencoder": "CosmosAutoencoder",
                            "denoiser": "CosmosDenoiser" if parts.denoiser is not None else None},
             "schedule": saved_dict(parts.schedule), "sampling": sampling}
    if parts.sampling_presets:
        index["sampling_presets"] = {name: sampling_dict(preset) for name, preset in parts.sampling_presets.items()}
    (folder / INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    if parts.casing is not None:
        parts.casing.save(folder)
