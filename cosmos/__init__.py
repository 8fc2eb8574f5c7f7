"""Cosmos: compressed and smooth latent space for text diffusion (arXiv 2506.21170).

The pipeline in one screen (each name is a module here):
    encoder       frozen pretrained encoder: text -> token features (B, L, D)
    autoencoder   compressor (B, L, D) -> latents (B, N, d) (Perceiver, or chunk-local: latent i owns
                  tokens [i L/N, (i+1) L/N)); decoder latents -> logits (B, L, V)
    normalization feature / latent statistics computed from data
    denoiser      x0-predicting transformer on normalised latents (B, N, d); optionally prompt-conditioned
    schedule      tan-d noise schedule a(t), s(t), beta(t)
    sampling      samplers that yield every step (Euler-Maruyama SDE, DDIM, DPM-Solver++ 2M), time
                  grids (uniform in t or in log-SNR); classifier-free guidance
    pipeline      CosmosPipeline: encode, decode, generate, trajectory, interpolate, vary
                  (beside it: pipeline_folder, validation, prompts, detokenize, interpolation, outputs)
    checkpoint    safetensors + config.json folders, validated loading
    projection    the latent map: a stored UMAP of reference latents, new points placed without a refit
    card          a checkpoint's model-card facts as data
"""

from .autoencoder import CosmosAutoencoder
from .checkpoint import CheckpointError
from .config import (DEFAULT_ENCODER, AutoencoderConfig, ConfigError, DenoiserConfig, SamplingConfig,
                     ScheduleConfig)
from .denoiser import CosmosDenoiser
from .detokenize import join_wordpieces
from .infill import TextChunk
from .encoder import EncoderLoadError, FrozenEncoder
from .interpolation import INTERPOLATION_METHODS
from .outputs import GenerationOutput, InfillOutput, InterpolationOutput, PipelineSummary, TrajectoryStep
from .pipeline import CosmosPipeline, vary_steps
from .sampling import (SAMPLER_LABELS, SAMPLERS, TIME_GRIDS, Step, guided, sample_ddim, sample_dpmpp_2m,
                       sample_euler_maruyama)
from .schedule import TanDSchedule
from .validation import TextTruncatedWarning

__all__ = [
    "DEFAULT_ENCODER", "AutoencoderConfig", "CheckpointError", "ConfigError", "CosmosAutoencoder",
    "CosmosDenoiser", "CosmosPipeline", "DenoiserConfig", "EncoderLoadError", "FrozenEncoder",
    "GenerationOutput", "INTERPOLATION_METHODS", "InfillOutput", "InterpolationOutput", "PipelineSummary", "SAMPLER_LABELS",
    "SAMPLERS", "SamplingConfig", "ScheduleConfig", "Step", "TIME_GRIDS",
    "TanDSchedule", "TextChunk", "TextTruncatedWarning", "TrajectoryStep", "guided", "sample_ddim",
    "sample_dpmpp_2m", "sample_euler_maruyama", "join_wordpieces", "vary_steps",
]
