"""Cosmos: compressed and smooth latent space for text diffusion (arXiv 2506.21170).

The pipeline in one screen (each name is a module here):
    encoder       frozen pretrained encoder: text -> token features (B, L, D)
    autoencoder   compressor (B, L, D) -> latents (B, N, d) (Perceiver, or chunk-local: latent i owns
                  tokens [i L/N, (i+1) L/N)); decoder latents -> logits (B, L, V)
    normalization feature / latent statistics computed from data
    denoiser      x0-predicting transformer on normalised latents (B, N, d); optionally prompt-conditioned
    schedule      tan-d noise schedule a(t), s(t), beta(t)
    sampling      Euler-Maruyama and DDIM samplers that yield every step; classifier-free guidance
    pipeline      CosmosPipeline: encode, decode, generate, trajectory, interpolate, vary
    checkpoint    safetensors + config.json folders, validated loading
"""

from .autoencoder import CosmosAutoencoder
from .checkpoint import CheckpointError
from .config import (DEFAULT_ENCODER, AutoencoderConfig, ConfigError, DenoiserConfig, SamplingConfig,
                     ScheduleConfig)
from .denoiser import CosmosDenoiser
from .encoder import EncoderLoadError, FrozenEncoder
from .pipeline import CosmosPipeline, GenerationOutput, InterpolationOutput, TextTruncatedWarning, TrajectoryStep
from .sampling import SAMPLERS, Step, guided, sample_ddim, sample_euler_maruyama
from .schedule import TanDSchedule

__all__ = [
    "DEFAULT_ENCODER", "AutoencoderConfig", "CheckpointError", "ConfigError", "CosmosAutoencoder",
    "CosmosDenoiser", "CosmosPipeline", "DenoiserConfig", "EncoderLoadError", "FrozenEncoder",
    "GenerationOutput", "InterpolationOutput", "SAMPLERS", "SamplingConfig", "ScheduleConfig", "Step",
    "TanDSchedule", "TextTruncatedWarning", "TrajectoryStep", "guided", "sample_ddim", "sample_euler_maruyama",
]
