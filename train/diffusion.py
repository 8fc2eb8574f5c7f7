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
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from safetensors.torch import load_file
from tqdm.auto import tqdm

from cosmos import CosmosDenoiser, CosmosPipeline, TanDSchedule
from cosmos.checkpoint import CheckpointError
from cosmos.config import ConfigError

from .cli import run_cli
from .config import TrainConfig
from .data import held_out_prompts
from .loop import (EMA, MetricsLog, batch_indices, file_digest, find_state, init_weights_from, load_state,
                   machine_description, make_optimizer, save_state, set_lr, stage_fingerprint)


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
    longest prompt (the padding after it carries nothing), as :meth:`CosmosPipeline.encode_prompts` makes them."""
    mask = source_ids != pipe.autoencoder.cfg.pad_token_id
    width = max(1, int(mask.sum(1).max()))
    feats = pipe.autoencoder.normalize_features(features[:, :width].to(pipe.device, torch.float32))
    return feats.to(device), mask[:, :width].to(device)


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
    out_dir = cfg.path / "diffusion"
    latent_dir = cfg.path / "latents"
    if not (latent_dir / "stats.safetensors").is_file():
        raise CheckpointError(f"{latent_dir} has no latents yet: run `python -m train.latent_stats --config "
                              f"{cfg.preset}` first")
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cpu)
    device = accelerator.device
    rank = accelerator.process_index
    torch.manual_seed(cfg.seed + rank)  # each process draws its own t, noise and self-cond mask

    ae_pipe = CosmosPipeline.from_pretrained(cfg.autoencoder_dir)
    train_data = load_file(str(latent_dir / "train.safetensors"))
    val_data = {k: v[:stage.loop.eval_windows] for k, v in load_file(str(latent_dir / "validation.safetensors")).items()}
    train_latents, val_latents = train_data["latents"], val_data["latents"]
    stats = load_file(str(latent_dir / "stats.safetensors"))
    if cfg.conditional != ("source_features" in train_data):
        raise CheckpointError(f"{latent_dir} was made for {'un' if cfg.conditional else ''}conditional training "
                              f"(diffusion_stage.pairs changed since): rerun `python -m train.latent_stats --config "
                              f"{cfg.preset}`")

    N, d = ae_pipe.latent_shape
    model_cfg = dataclasses.replace(cfg.denoiser, latent_dim=d, num_latents=N)
    if cfg.conditional:  # prompts are read through the autoencoder's frozen encoder
        width = ae_pipe.encoder.hidden_size
        if cfg.denoiser.source_dim not in (None, width):
            raise ConfigError(f"denoiser.source_dim ({cfg.denoiser.source_dim}) must equal the encoder width "
                              f"({width}) or be left unset")
        model_cfg = dataclasses.replace(model_cfg, source_dim=width)
    denoiser = CosmosDenoiser(model_cfg)
    saved = find_state(out_dir / "state")
    if stage.init_from is not None and (saved is None or restart):  # a resumed run loads its own weights
        source = CosmosPipeline.from_pretrained(stage.init_from).denoiser
        if source is None:
            raise CheckpointError(f"diffusion_stage.init_from: {stage.init_from} has no denoiser")
        init_weights_from(denoiser, source, keep=("latent_mean", "latent_std"))
        print(f"denoiser initialised from {stage.init_from}")
    denoiser.set_latent_stats(stats["mean"], stats["std"])
    denoiser.to(device)
    ema = EMA(denoiser, stage.ema_decay)
    optimizer = make_optimizer(denoiser, stage.optim)
    schedule = TanDSchedule(cfg.schedule)

    # the latents (and so the autoencoder) a saved state was trained on must be the current ones
    fingerprint = stage_fingerprint(cfg, **_fingerprint_configs(cfg), schedule=cfg.schedule,
                                    latent_stats=file_digest(latent_dir / "stats.safetensors"))
    start = 0
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
    val_source = (prompt_batch(ae_pipe, val_data["source_features"], val_data["source_ids"], device)
                  if cfg.conditional else (None, None))
    eval_prompts = held_out_prompts(stage.pairs, "validation", stage.sample_count) if cfg.conditional else None

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
        source, source_mask = (prompt_batch(ae_pipe, train_data["source_features"][idx],
                                            train_data["source_ids"][idx], device) if cfg.conditional else (None, None))
        set_lr(optimizer, optim.lr_at(step))
        with accelerator.autocast():
            loss = denoising_loss(model, schedule, z0, self_cond_prob, source=source, source_mask=source_mask,
                                  source_drop_prob=stage.source_drop_prob)
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
            steps = min(cfg.sampling.steps, 50)
            if eval_prompts:  # one continuation per held-out prompt, logged with it
                texts = sampler_pipe.generate(prompt=eval_prompts, steps=steps, seed=0).texts
                samples = [{"prompt": p, "sample": s} for p, s in zip(eval_prompts, texts)]
            else:
                texts = sampler_pipe.generate(stage.sample_count, steps=steps, seed=0).texts
                samples = texts
            record = dict(step=done, event="eval", val_loss=validation_loss(denoiser, schedule, z_val, *val_source),
                          ema_val_loss=validation_loss(ema_denoiser.to(device), schedule, z_val, *val_source),
                          samples=samples, minutes=round((time.perf_counter() - began) / 60, 3))
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
