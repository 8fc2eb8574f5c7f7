"""Stage 3: train the latent denoiser (x0 prediction, self-conditioning, EMA).

    python -m train.diffusion --config cpu-small

Reads ``<run_dir>/autoencoder/pipeline`` (or ``diffusion_stage.autoencoder_from``) and
``<run_dir>/latents/``; writes ``<run_dir>/diffusion/`` (``state/``, ``metrics.jsonl``) and the
complete pipeline (EMA weights) in ``<run_dir>/pipeline``.
Method: "Diffusion model": t ~ U[t_min, 1], z_t = a(t) z0 + s(t) eps, plain MSE on x0; with
probability ``self_cond_prob`` the first (no-grad) x0 estimate is fed back as self-conditioning.
With ``diffusion_stage.pairs`` ("Conditional tasks"): the denoiser reads the prompt's frozen features
through cross-attention, and each row's prompt is dropped (null source) with probability
``source_drop_prob``, which classifier-free guidance needs at sampling time.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from cosmos import CosmosDenoiser, CosmosPipeline, TanDSchedule
from cosmos.checkpoint import CheckpointError, count_parameters
from cosmos.config import ConfigError
from cosmos.prompts import prompt_features

from .cli import run_cli
from .config import TrainConfig
from .data import held_out_prompts
from .loop import (EMA, Stage, StepOutput, file_digest, fresh_start, init_weights_from, run, stage_fingerprint,
                   start_accelerator)


def denoising_loss(denoiser: CosmosDenoiser, schedule: TanDSchedule, z0: torch.Tensor, self_cond_prob: float,
                   generator: torch.Generator | None = None, t: torch.Tensor | None = None,
                   source: torch.Tensor | None = None, source_mask: torch.Tensor | None = None,
                   source_drop_prob: float = 0.0) -> torch.Tensor:
    """MSE between x0_hat and z0 (normalised latents, (B, N, d)) at random (or given) times.

    ``self_cond_prob`` must be 0 for a denoiser built without self-conditioning. A conditional
    denoiser gets ``source`` (B, S, source_dim) and ``source_mask`` (B, S); each row's source is
    replaced by the null source with probability ``source_drop_prob`` (classifier-free guidance)."""
    B = z0.shape[0]
    if t is None:
        t = schedule.sample_training_times(B, generator)
    noise = torch.randn(z0.shape, generator=generator).to(z0.device)
    t = t.to(z0.device)
    z_t = schedule.add_noise(z0, t, noise)
    if source is not None and source_drop_prob > 0:
        if source_mask is None:
            source_mask = torch.ones(source.shape[:2], dtype=torch.bool, device=source.device)
        keep = (torch.rand(B, generator=generator) >= source_drop_prob).to(source_mask.device)
        source_mask = source_mask & keep[:, None]         # an all-False row reads the null source
    self_cond = None
    if self_cond_prob > 0:
        use = (torch.rand(B, generator=generator) < self_cond_prob).to(z0.device)[:, None, None]
        if bool(use.any()):
            with torch.no_grad():
                first = denoiser(z_t, t, None, source, source_mask).detach()
            self_cond = torch.where(use, first, torch.zeros_like(first))
    return F.mse_loss(denoiser(z_t, t, self_cond, source, source_mask).float(), z0.float())


@torch.no_grad()
def validation_loss(denoiser: CosmosDenoiser, schedule: TanDSchedule, z0: torch.Tensor,
                    source: torch.Tensor | None = None, source_mask: torch.Tensor | None = None) -> float:
    """Loss on fixed validation latents (and prompts), times and noise (seeded), so evaluations are comparable."""
    was_training = denoiser.training
    denoiser.eval()
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0.05, 0.95, len(z0))
    loss = denoising_loss(denoiser, schedule, z0, 0.0, generator=g, t=t, source=source, source_mask=source_mask).item()
    denoiser.train(was_training)
    return loss


def prompt_batch(pipe: CosmosPipeline, features: torch.Tensor, source_ids: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached raw prompt features (B, S, D) and ids (B, S) -> normalised features and mask, cut to the
    longest prompt, through the function :meth:`CosmosPipeline.encode_prompts` uses (``cosmos.prompts``)."""
    mask = source_ids != pipe.autoencoder.cfg.pad_token_id
    feats, mask = prompt_features(pipe.autoencoder, features.to(pipe.device, torch.float32), mask.to(pipe.device))
    return feats.to(device), mask.to(device)


def _fingerprint_configs(cfg: TrainConfig) -> dict[str, dict]:
    """The denoiser and stage configs a saved state depends on. An unconditional run leaves out the
    fields prompt conditioning added (at their defaults), so states saved before they existed resume.
    With a constant learning rate the step count changes nothing before the last step, so it is left out
    too: a run can be lengthened, or ended early at its last saved state, with
    ``--set diffusion_stage.optim.steps=K``."""
    denoiser, stage = dataclasses.asdict(cfg.denoiser), dataclasses.asdict(cfg.diffusion_stage)
    if not cfg.conditional:
        for key in ("source_dim", "source_layers", "source_max_length"):
            denoiser.pop(key)
        for key in ("pairs", "source_drop_prob"):
            stage.pop(key)
    for key in ("autoencoder_from", "init_from"):  # unset: as states saved before the field existed
        if stage[key] is None:
            stage.pop(key)
    if stage["optim"]["schedule"] == "constant":
        stage["optim"].pop("steps")
    return {"denoiser": denoiser, "stage": stage}


def train_diffusion(cfg: TrainConfig, restart: bool = False, cpu: bool = False) -> Path:
    stage = cfg.diffusion_stage
    latent_dir = cfg.latents_dir
    if not (latent_dir / "stats.safetensors").is_file():
        raise CheckpointError(f"{latent_dir} has no latents yet: run `python -m train.latent_stats --config "
                              f"{cfg.preset}` first")
    accelerator = start_accelerator(cfg, cpu)  # each process draws its own t, noise and self-cond mask
    device = accelerator.device

    # 1. data: the latents (and prompts) of stage 2
    ae_pipe = CosmosPipeline.from_pretrained(cfg.autoencoder_dir)
    train_data = load_file(str(latent_dir / "train.safetensors"))
    val_data = {k: v[:stage.loop.eval_windows] for k, v in load_file(str(latent_dir / "validation.safetensors")).items()}
    train_latents, val_latents = train_data["latents"], val_data["latents"]
    stats = load_file(str(latent_dir / "stats.safetensors"))
    if cfg.conditional != ("source_features" in train_data):
        raise CheckpointError(f"{latent_dir} was made for {'un' if cfg.conditional else ''}conditional training "
                              f"(diffusion_stage.pairs changed since): rerun `python -m train.latent_stats --config "
                              f"{cfg.preset}`")

    # 2. model: the denoiser (from init_from, or fresh) with this run's latent statistics, and its EMA
    N, d = ae_pipe.latent_shape
    model_cfg = dataclasses.replace(cfg.denoiser, latent_dim=d, num_latents=N)
    if cfg.conditional:  # prompts are read through the autoencoder's frozen encoder
        width = ae_pipe.encoder.hidden_size
        if cfg.denoiser.source_dim not in (None, width):
            raise ConfigError(f"denoiser.source_dim ({cfg.denoiser.source_dim}) must equal the encoder width "
                              f"({width}) or be left unset")
        model_cfg = dataclasses.replace(model_cfg, source_dim=width)
    denoiser = CosmosDenoiser(model_cfg)
    if stage.init_from is not None and fresh_start(cfg.diffusion_stage_dir, restart):
        source = CosmosPipeline.from_pretrained(stage.init_from).denoiser
        if source is None:
            raise CheckpointError(f"diffusion_stage.init_from: {stage.init_from} has no denoiser")
        init_weights_from(denoiser, source, keep=("latent_mean", "latent_std"))
        print(f"denoiser initialised from {stage.init_from}")
    denoiser.set_latent_stats(stats["mean"], stats["std"])
    denoiser.to(device)
    ema = EMA(denoiser, stage.ema_decay)
    schedule = TanDSchedule(cfg.schedule)
    self_cond_prob = stage.self_cond_prob if denoiser.cfg.self_condition else 0.0
    z_val = denoiser.normalize(val_latents.to(device))
    val_source = (prompt_batch(ae_pipe, val_data["source_features"], val_data["source_ids"], device)
                  if cfg.conditional else (None, None))
    eval_prompts = held_out_prompts(stage.pairs, "validation", stage.sample_count) if cfg.conditional else None

    # 3. the loop: a batch is normalised latents (+ prompts); the loss is x0 MSE at random times
    def batch(idx: torch.Tensor):
        z0 = denoiser.normalize(train_latents[idx].to(device))                               # (B, N, d)
        source = (prompt_batch(ae_pipe, train_data["source_features"][idx], train_data["source_ids"][idx], device)
                  if cfg.conditional else (None, None))
        return z0, source

    def loss(model: torch.nn.Module, batch) -> StepOutput:
        z0, (source, source_mask) = batch
        value = denoising_loss(model, schedule, z0, self_cond_prob, source=source, source_mask=source_mask,
                               source_drop_prob=stage.source_drop_prob)
        return StepOutput(value, {}, len(z0))

    def evaluate() -> tuple[dict, str]:
        ema_denoiser = copy.deepcopy(denoiser).eval()
        ema.copy_to(ema_denoiser)
        sampler_pipe = CosmosPipeline(ae_pipe.encoder, ae_pipe.autoencoder, ema_denoiser.cpu(), cfg.schedule,
                                      cfg.sampling)
        steps = min(cfg.sampling.steps, 50)
        if eval_prompts:  # one continuation per held-out prompt, logged with it
            texts = sampler_pipe.generate(prompt=eval_prompts, steps=steps, seed=0).texts
            samples = [{"prompt": p, "sample": s} for p, s in zip(eval_prompts, texts)]
        else:
            texts = sampler_pipe.generate(stage.sample_count, steps=steps, seed=0).texts
            samples = texts
        fields = dict(val_loss=validation_loss(denoiser, schedule, z_val, *val_source),
                      ema_val_loss=validation_loss(ema_denoiser.to(device), schedule, z_val, *val_source),
                      samples=samples)
        return fields, f"val loss {fields['val_loss']:.4f} (EMA {fields['ema_val_loss']:.4f}) | {texts[0][:80]!r}"

    def save_artefacts() -> None:  # 4. the complete pipeline, with the EMA weights
        final = copy.deepcopy(denoiser).cpu()
        ema.copy_to(final)
        pipe = CosmosPipeline(ae_pipe.encoder, ae_pipe.autoencoder, final, cfg.schedule, cfg.sampling)
        pipe.save_pretrained(cfg.pipeline_dir)
        print(f"pipeline (EMA denoiser) written to {cfg.pipeline_dir}")

    # the latents (and so the autoencoder) a saved state was trained on must be the current ones
    fingerprint = stage_fingerprint(cfg, **_fingerprint_configs(cfg), schedule=cfg.schedule,
                                    latent_stats=file_digest(latent_dir / "stats.safetensors"))
    run(cfg, accelerator, Stage(
        name="diffusion", folder=cfg.diffusion_stage_dir, log=cfg.diffusion_log, model=denoiser,
        optim=stage.optim, loop=stage.loop, num_items=len(train_latents), fingerprint=fingerprint,
        batch=batch, loss=loss, evaluate=evaluate, save_artefacts=save_artefacts, ema=ema, rate="samples_per_s",
        start_record=dict(train_latents=len(train_latents), params=count_parameters(denoiser))),
        restart)
    return cfg.pipeline_dir


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, __doc__, lambda cfg, args: train_diffusion(cfg, restart=args.restart, cpu=args.cpu))


if __name__ == "__main__":
    main()
