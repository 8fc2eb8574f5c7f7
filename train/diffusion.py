"""Stage 3: train the latent denoiser (x0 prediction, self-conditioning, EMA).

    python -m train.diffusion --config cpu-small

Reads ``<run_dir>/autoencoder/pipeline`` and ``<run_dir>/latents/``; writes ``<run_dir>/diffusion/``
(``state/``, ``metrics.jsonl``) and the complete pipeline (EMA weights) in ``<run_dir>/pipeline``.
Method: "Diffusion model": t ~ U[t_min, 1], z_t = a(t) z0 + s(t) eps, plain MSE on x0; with
probability ``self_cond_prob`` the first (no-grad) x0 estimate is fed back as self-conditioning.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import load_file
from tqdm.auto import tqdm

from cosmos import CosmosDenoiser, CosmosPipeline, TanDSchedule
from cosmos.checkpoint import CheckpointError

from .cli import run_cli
from .config import TrainConfig
from .loop import (EMA, MetricsLog, batch_indices, file_digest, find_state, load_state, machine_description,
                   make_optimizer, save_state, set_lr, stage_fingerprint)


def denoising_loss(denoiser: CosmosDenoiser, schedule: TanDSchedule, z0: torch.Tensor, self_cond_prob: float,
                   generator: torch.Generator | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between x0_hat and z0 (normalised latents, (B, N, d)) at random (or given) times.

    ``self_cond_prob`` must be 0 for a denoiser built without self-conditioning."""
    B = z0.shape[0]
    if t is None:
        t = schedule.sample_training_times(B, generator)
    noise = torch.randn(z0.shape, generator=generator).to(z0.device)
    t = t.to(z0.device)
    z_t = schedule.add_noise(z0, t, noise)
    self_cond = None
    if self_cond_prob > 0:
        use = (torch.rand(B, generator=generator) < self_cond_prob).to(z0.device)[:, None, None]
        if bool(use.any()):
            with torch.no_grad():
                first = denoiser(z_t, t, None).detach()
            self_cond = torch.where(use, first, torch.zeros_like(first))
    return F.mse_loss(denoiser(z_t, t, self_cond).float(), z0.float())


@torch.no_grad()
def validation_loss(denoiser: CosmosDenoiser, schedule: TanDSchedule, z0: torch.Tensor) -> float:
    """Loss on fixed validation latents, times and noise (seeded), so evaluations are comparable."""
    was_training = denoiser.training
    denoiser.eval()
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0.05, 0.95, len(z0))
    loss = denoising_loss(denoiser, schedule, z0, 0.0, generator=g, t=t).item()
    denoiser.train(was_training)
    return loss


def train_diffusion(cfg: TrainConfig, restart: bool = False, cpu: bool = False) -> Path:
    stage = cfg.diffusion_stage
    out_dir = cfg.path / "diffusion"
    latent_dir = cfg.path / "latents"
    if not (latent_dir / "stats.safetensors").is_file():
        raise CheckpointError(f"{latent_dir} has no latents yet: run `python -m train.latent_stats --config "
                              f"{cfg.preset}` first")
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cpu)
    device = accelerator.device
    rank = accelerator.process_index
    torch.manual_seed(cfg.seed + rank)  # each process draws its own t, noise and self-cond mask

    ae_pipe = CosmosPipeline.from_pretrained(cfg.path / "autoencoder" / "pipeline")
    train_latents = load_file(str(latent_dir / "train.safetensors"))["latents"]
    val_latents = load_file(str(latent_dir / "validation.safetensors"))["latents"][:stage.loop.eval_windows]
    stats = load_file(str(latent_dir / "stats.safetensors"))

    N, d = ae_pipe.latent_shape
    denoiser = CosmosDenoiser(dataclasses.replace(cfg.denoiser, latent_dim=d, num_latents=N))
    denoiser.set_latent_stats(stats["mean"], stats["std"])
    denoiser.to(device)
    ema = EMA(denoiser, stage.ema_decay)
    optimizer = make_optimizer(denoiser, stage.optim)
    schedule = TanDSchedule(cfg.schedule)

    # the latents (and so the autoencoder) a saved state was trained on must be the current ones
    fingerprint = stage_fingerprint(cfg, denoiser=cfg.denoiser, schedule=cfg.schedule, stage=cfg.diffusion_stage,
                                    latent_stats=file_digest(latent_dir / "stats.safetensors"))
    start = 0
    saved = find_state(out_dir / "state")
    if saved is not None and not restart:
        start = load_state(saved, denoiser, optimizer, ema, fingerprint=fingerprint, rank=rank)["step"]
        print(f"resuming diffusion training at step {start}")
    model, optimizer = accelerator.prepare(denoiser, optimizer)
    denoiser = accelerator.unwrap_model(model)
    log = MetricsLog(out_dir / "metrics.jsonl", start) if accelerator.is_main_process else None
    if log is not None and start == 0:
        log.write(step=0, event="start", preset=cfg.preset, machine=machine_description(),
                  processes=accelerator.num_processes, train_latents=len(train_latents),
                  params=sum(p.numel() for p in denoiser.parameters()))
    z_val = denoiser.normalize(val_latents.to(device))

    optim, loop = stage.optim, stage.loop
    self_cond_prob = stage.self_cond_prob if denoiser.cfg.self_condition else 0.0
    began = time.perf_counter() - 60 * (log.minutes_done if log else 0.0)
    last_log = time.perf_counter()
    denoiser.train()
    bar = tqdm(range(start, optim.steps), initial=start, total=optim.steps, desc="diffusion", unit="step")
    for step in bar:
        idx = batch_indices(len(train_latents), optim.batch_size, step, cfg.seed)
        idx = idx[accelerator.process_index::accelerator.num_processes]  # this process's share
        z0 = denoiser.normalize(train_latents[idx].to(device))
        set_lr(optimizer, optim.lr_at(step))
        with accelerator.autocast():
            loss = denoising_loss(model, schedule, z0, self_cond_prob)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(denoiser)
        done = step + 1
        if not accelerator.is_main_process:
            continue
        if done % loop.log_every == 0 or done == optim.steps:
            now = time.perf_counter()
            log.write(step=done, loss=loss.item(), lr=optim.lr_at(step),  # global batch: all processes
                      samples_per_s=round(loop.log_every * optim.batch_size / max(now - last_log, 1e-9), 1),
                      minutes=round((now - began) / 60, 3))
            last_log = now
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if done % loop.eval_every == 0 or done == optim.steps:
            ema_denoiser = copy.deepcopy(denoiser).eval()
            ema.copy_to(ema_denoiser)
            sampler_pipe = CosmosPipeline(ae_pipe.encoder, ae_pipe.autoencoder, ema_denoiser.cpu(), cfg.schedule,
                                          cfg.sampling)
            texts = sampler_pipe.generate(stage.sample_count, steps=min(cfg.sampling.steps, 50), seed=0).texts
            record = dict(step=done, event="eval", val_loss=validation_loss(denoiser, schedule, z_val),
                          ema_val_loss=validation_loss(ema_denoiser.to(device), schedule, z_val), samples=texts,
                          minutes=round((time.perf_counter() - began) / 60, 3))
            log.write(**record)
            tqdm.write(f"step {done}: val loss {record['val_loss']:.4f} (EMA {record['ema_val_loss']:.4f}) | "
                       f"{texts[0][:80]!r}")
        if done % loop.save_every == 0 or done == optim.steps:
            save_state(out_dir / "state", done, denoiser, optimizer, ema, extra={"fingerprint": fingerprint})

    pipeline_dir = cfg.path / "pipeline"
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return pipeline_dir
    final = copy.deepcopy(denoiser).cpu()
    ema.copy_to(final)
    CosmosPipeline(ae_pipe.encoder, ae_pipe.autoencoder, final, cfg.schedule, cfg.sampling).save_pretrained(pipeline_dir)
    print(f"pipeline (EMA denoiser) written to {pipeline_dir}")
    return pipeline_dir


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, __doc__, lambda cfg, args: train_diffusion(cfg, restart=args.restart, cpu=args.cpu))


if __name__ == "__main__":
    main()
