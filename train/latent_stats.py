"""Stage 2: encode the diffusion data with the trained autoencoder; per-(position, dim) statistics.

    python -m train.latent_stats --config cpu-small

Reads ``<run_dir>/autoencoder/pipeline`` (or ``diffusion_stage.autoencoder_from``); writes
``<run_dir>/latents/{train,validation}.safetensors`` (latents (M, N, d), float32) and
``stats.safetensors`` (mean, std: (N, d)), which the diffusion stage trains on and stores inside
the denoiser (method: "Latent normalisation").

With ``diffusion_stage.pairs`` (prompt-conditioned training) the latents are the targets', and each
split file also holds the prompts: ``source_ids`` (M, S) and their frozen-encoder features
``source_features`` (M, S, D) in fp16 (raw; the diffusion stage normalises them with the
autoencoder's feature statistics, as the pipeline does).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from cosmos import CosmosPipeline
from cosmos.normalization import MomentAccumulator

from .cli import run_cli
from .config import TrainConfig
from .data import cached_features, load_pairs, load_windows
from .loop import save_atomic


@torch.inference_mode()
def compress_windows(pipe: CosmosPipeline, windows: torch.Tensor, features: torch.Tensor,
                     batch_size: int = 256) -> torch.Tensor:
    """Token windows (M, L) and their frozen features (M, L, D) -> latents (M, N, d) on the CPU."""
    pad = pipe.autoencoder.cfg.pad_token_id
    out = []
    for start in tqdm(range(0, len(windows), batch_size), desc="compressing", unit="batch"):
        mask = windows[start:start + batch_size].to(pipe.device) != pad
        feats = features[start:start + batch_size].to(pipe.device, torch.float32)
        out.append(pipe.autoencoder.encode(feats, mask).float().cpu())
    return torch.cat(out)


def compute_latent_stats(cfg: TrainConfig, cpu: bool = False) -> Path:
    pipe = CosmosPipeline.from_pretrained(cfg.autoencoder_dir)
    if torch.cuda.is_available() and not cpu:
        pipe.to("cuda")
    out_dir = cfg.latents_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    data = cfg.diffusion_stage.data
    for split in ("train", "validation"):
        prompts = {}
        if cfg.conditional:
            source_ids, windows = load_pairs(cfg.diffusion_stage.pairs, split, pipe.encoder, pipe.max_length,
                                             cfg.denoiser.source_max_length, cfg.cache_path)
            prompts = {"source_ids": source_ids.contiguous(),
                       "source_features": cached_features(pipe.encoder, source_ids, cfg.cache_path, device=pipe.device)}
        else:
            windows = load_windows(data, split, pipe.encoder, pipe.max_length, cfg.cache_path)
        features = cached_features(pipe.encoder, windows, cfg.cache_path, device=pipe.device)
        latents = compress_windows(pipe, windows, features)
        save_atomic({"latents": latents.contiguous(), "input_ids": windows.contiguous(), **prompts},
                    out_dir / f"{split}.safetensors")
        if split == "train":
            acc = MomentAccumulator(tuple(latents.shape[1:]))
            acc.update(latents)
            mean, std = acc.mean_std(min_var=1e-6)
            save_atomic({"mean": mean, "std": std}, out_dir / "stats.safetensors")
        print(f"{split}: {len(latents)} latents of shape {tuple(latents.shape[1:])}")
    return out_dir


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, __doc__, lambda cfg, args: compute_latent_stats(cfg, cpu=args.cpu))


if __name__ == "__main__":
    main()
