"""Stage 1: train the Cosmos autoencoder (compressor + decoder) on frozen-encoder features.

    python -m train.autoencoder --config cpu-small            # resumes if a state exists
    python -m train.autoencoder --config tiny --set autoencoder_stage.optim.steps=20 --restart

Writes ``<run_dir>/autoencoder/``: ``state/`` (resumable), ``metrics.jsonl`` and ``pipeline/``
(an autoencoder-only CosmosPipeline folder that the next stages load).
Method: "Autoencoder training" (loss = CE + MSE alignment, augmentations, AdamW + warmup + cosine).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tqdm.auto import tqdm

from cosmos import CosmosAutoencoder, CosmosPipeline, FrozenEncoder
from cosmos.config import ConfigError
from cosmos.metrics import token_accuracy
from cosmos.normalization import MomentAccumulator

from .config import TrainConfig
from .data import cached_features, encode_features, load_windows
from .loop import (MetricsLog, Throughput, batch_indices, find_state, init_weights_from, load_state,
                   machine_description, make_optimizer, save_atomic, save_state, set_lr, stage_fingerprint)
from .cli import run_cli


@torch.inference_mode()
def reconstruction_accuracy(autoencoder: CosmosAutoencoder, encoder: FrozenEncoder, windows: torch.Tensor,
                            features: torch.Tensor | None = None, batch_size: int = 128) -> float:
    """Clean token accuracy of encode -> decode of token windows (M, L) (:func:`cosmos.metrics.token_accuracy`),
    from their cached frozen ``features`` (M, L, D) when given, else the encoder's."""
    was_training = autoencoder.training
    autoencoder.eval()
    device = next(autoencoder.parameters()).device

    def batches():
        for start in range(0, len(windows), batch_size):
            ids = windows[start:start + batch_size].to(device)
            mask = ids != autoencoder.cfg.pad_token_id
            feats = (features[start:start + batch_size].to(device, torch.float32) if features is not None
                     else encoder(ids, mask))
            yield autoencoder.logits_to_token_ids(autoencoder.decode(autoencoder.encode(feats, mask))), ids, mask

    accuracy = token_accuracy(batches())
    autoencoder.train(was_training)
    return accuracy


def feature_statistics(features: torch.Tensor, windows: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean/std of encoder features over non-pad tokens (variance floored at 1e-4)."""
    acc = MomentAccumulator((features.shape[-1],))
    for start in range(0, len(windows), 256):
        mask = windows[start:start + 256] != pad_id
        acc.update(features[start:start + 256][mask].float())
    return acc.mean_std(min_var=1e-4)


def head_vocabulary(windows: torch.Tensor, encoder: FrozenEncoder) -> torch.Tensor:
    """Token ids seen in the training windows, plus every special token."""
    seen = torch.unique(windows)
    specials = torch.tensor(list(encoder.special_token_ids().values()))
    return torch.unique(torch.cat([seen, specials]))


def fit_probe_head(autoencoder: CosmosAutoencoder, features: torch.Tensor, windows: torch.Tensor,
                   steps: int = 150, batch_tokens: int = 4096, lr: float = 3e-3, held_out: int = 20_000) -> float:
    """Set the head to a linear probe on the normalised features; returns its held-out token accuracy.

    A ridge regression of the targets' one-hot codes (closed form, ~0.6 accuracy) starts a softmax
    regression that ``steps`` Adam steps on ``batch_tokens`` random tokens refine (~0.95 at 150 steps on
    MiniLM features of TinyStories, ~2 CPU minutes). The decoder's MSE target is then also a CE target:
    measured, a random head's CE gradient pulls the hidden state away from the features (the MSE rises
    above 1 in the first hundred steps and accuracy stalls at 0.3 by step 300).
    """
    mask = windows != autoencoder.cfg.pad_token_id
    x = autoencoder.normalize_features(features[mask].float()).detach()      # (T, D)
    y = autoencoder.token_ids_to_head(windows[mask])                          # (T,)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    held, fit = (order[:held_out], order[held_out:]) if len(x) > 2 * held_out else (order, order)
    with torch.no_grad():
        X, Y = x[fit], y[fit]
        gram = X.T @ X + 1e-2 * len(X) * torch.eye(X.shape[1])               # (D, D)
        xty = torch.zeros(autoencoder.cfg.output_vocab_size, X.shape[1]).index_add_(0, Y, X)  # (V, D)
        weight = torch.linalg.solve(gram, xty.T).T                            # (V, D)
    weight.requires_grad_(True)
    optimizer = torch.optim.Adam([weight], lr=lr)
    draw = torch.Generator().manual_seed(1)
    for _ in tqdm(range(steps), desc="linear probe head", unit="step"):
        batch = fit[torch.randint(0, len(fit), (batch_tokens,), generator=draw)]
        loss = F.cross_entropy(x[batch] @ weight.T, y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        autoencoder.head.weight.copy_(weight)
        return float(((x[held] @ weight.T).argmax(-1) == y[held]).float().mean())


def cached_probe_head(autoencoder: CosmosAutoencoder, features: torch.Tensor, windows: torch.Tensor,
                      cache_dir: Path) -> float:
    """:func:`fit_probe_head`, its result cached under ``cache_dir`` by the inputs' contents (the sample's
    features and tokens, the feature statistics, the head vocabulary), so runs on the same data fit it once."""
    import hashlib

    from safetensors.torch import load_file

    digest = hashlib.sha1()
    for tensor in (features, windows, autoencoder.feature_mean, autoencoder.feature_std, autoencoder.head_token_ids):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    path = cache_dir / f"probe-head-{digest.hexdigest()[:12]}.safetensors"
    if path.is_file():
        cached = load_file(str(path))
        with torch.no_grad():
            autoencoder.head.weight.copy_(cached["weight"])
        return float(cached["accuracy"])
    accuracy = fit_probe_head(autoencoder, features, windows)
    save_atomic({"weight": autoencoder.head.weight.detach().cpu().contiguous(),
                 "accuracy": torch.tensor(accuracy)}, path)
    return accuracy


def train_autoencoder(cfg: TrainConfig, restart: bool = False, cpu: bool = False) -> Path:
    if cfg.diffusion_stage.autoencoder_from is not None:
        raise ConfigError(f"preset {cfg.preset!r} reuses the autoencoder in {cfg.diffusion_stage.autoencoder_from} "
                          "(diffusion_stage.autoencoder_from): there is none to train; go on with "
                          f"`python -m train.latent_stats --config {cfg.preset}`")
    stage = cfg.autoencoder_stage
    out_dir = cfg.path / "autoencoder"
    cache_dir = cfg.cache_path
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cpu)
    device = accelerator.device
    rank = accelerator.process_index
    torch.manual_seed(cfg.seed + rank)  # each process draws its own augmentation noise

    # 1. data: token windows (+ frozen features, computed once)
    encoder = FrozenEncoder.from_pretrained(cfg.autoencoder.encoder).to(device)
    L, pad = cfg.autoencoder.max_length, encoder.tokenizer.pad_token_id
    train_windows = load_windows(stage.data, "train", encoder, L, cache_dir)
    val_windows = load_windows(stage.data, "validation", encoder, L, cache_dir)
    val_windows = val_windows[torch.randperm(len(val_windows), generator=torch.Generator().manual_seed(0))]
    val_windows = val_windows[:stage.loop.eval_windows]
    features = None
    if stage.cache_features:
        features = cached_features(encoder, train_windows, cache_dir, device=device)
    val_features = encode_features(encoder, val_windows, pad, None, device=device)

    # 2. model: feature statistics and (optionally) a head over the seen tokens
    model_cfg = cfg.autoencoder
    vocab = head_vocabulary(train_windows, encoder) if stage.restrict_vocab else None
    if vocab is not None:
        model_cfg = dataclasses.replace(model_cfg, head_vocab_size=len(vocab))
    autoencoder = CosmosAutoencoder.for_encoder(encoder, model_cfg)
    # statistics over a seeded random sample of the training windows (every source contributes)
    sample = torch.randperm(len(train_windows), generator=torch.Generator().manual_seed(cfg.seed))[:4096]
    sample_features = features[sample] if features is not None else encode_features(
        encoder, train_windows[sample], pad, None, device=device)
    autoencoder.set_feature_stats(*feature_statistics(sample_features, train_windows[sample], pad))
    if vocab is not None:
        autoencoder.set_head_vocabulary(vocab)
    saved = find_state(out_dir / "state")
    if stage.init_from is not None and (saved is None or restart):  # a resumed run loads its own weights
        source = CosmosPipeline.from_pretrained(stage.init_from).autoencoder
        init_weights_from(autoencoder, source)
        print(f"autoencoder initialised from {stage.init_from}")
    elif stage.probe_head and (saved is None or restart):  # a resumed run loads its trained head instead
        probe = cached_probe_head(autoencoder, sample_features, train_windows[sample], cache_dir)
        print(f"output head initialised as a linear probe on the features: {probe:.3f} token accuracy")
    autoencoder.to(device)
    optimizer = make_optimizer(autoencoder, stage.optim)

    stage_config = dataclasses.asdict(stage)
    if stage_config["init_from"] is None:  # unset: as states saved before the field existed
        stage_config.pop("init_from")
    fingerprint = stage_fingerprint(cfg, autoencoder=cfg.autoencoder, stage=stage_config,
                                    data=len(train_windows))
    start = 0
    if saved is not None and not restart:
        start = load_state(saved, autoencoder, optimizer, fingerprint=fingerprint, rank=rank)["step"]
        print(f"resuming autoencoder training at step {start}")
    autoencoder, optimizer = accelerator.prepare(autoencoder, optimizer)
    model = accelerator.unwrap_model(autoencoder)
    log = MetricsLog(out_dir / "metrics.jsonl", start) if accelerator.is_main_process else None
    if log is not None and start == 0:
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        log.write(step=0, event="start", preset=cfg.preset, machine=machine_description(),
                  processes=accelerator.num_processes, train_windows=len(train_windows),
                  val_windows=len(val_windows), trainable_params=n_params, head_vocab=model.cfg.output_vocab_size)

    # 3. loop
    optim, loop = stage.optim, stage.loop
    speed, began = Throughput(), time.perf_counter() - 60 * (log.minutes_done if log else 0.0)
    autoencoder.train()
    bar = tqdm(range(start, optim.steps), initial=start, total=optim.steps, desc="autoencoder", unit="step")
    for step in bar:
        idx = batch_indices(len(train_windows), optim.batch_size, step, cfg.seed)
        idx = idx[accelerator.process_index::accelerator.num_processes]  # this process's share
        ids = train_windows[idx].to(device)
        mask = ids != pad
        feats = features[idx].to(device, torch.float32) if features is not None else encoder(ids, mask)
        set_lr(optimizer, optim.lr_at(step))
        with accelerator.autocast():
            out = autoencoder(feats, mask, ids)
        accelerator.backward(out.loss)
        accelerator.clip_grad_norm_(autoencoder.parameters(), optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        speed.add(int(mask.sum()) * accelerator.num_processes)  # all processes' tokens
        done = step + 1
        if not accelerator.is_main_process:
            continue
        if done % loop.log_every == 0 or done == optim.steps:
            record = dict(step=done, loss=out.loss.item(), ce=out.ce.item(), mse=out.mse.item(),
                          accuracy=out.accuracy.item(), lr=optim.lr_at(step), tokens_per_s=round(speed.rate(), 1),
                          minutes=round((time.perf_counter() - began) / 60, 3))
            log.write(**record)
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.3f}")
        if done % loop.eval_every == 0 or done == optim.steps:
            val_acc = reconstruction_accuracy(model, encoder, val_windows, val_features)
            model.eval()
            with torch.inference_mode():
                z = model.encode(val_features[:3].to(device, torch.float32), val_windows[:3].to(device) != pad)
                texts = CosmosPipeline(encoder, model).to(device).decode(z)
            model.train()
            log.write(step=done, event="eval", val_accuracy=val_acc, reconstructions=texts,
                      minutes=round((time.perf_counter() - began) / 60, 3))
            tqdm.write(f"step {done}: held-out token accuracy {val_acc:.4f} | {texts[0][:80]!r}")
        if done % loop.save_every == 0 or done == optim.steps:
            save_state(out_dir / "state", done, model, optimizer, extra={"fingerprint": fingerprint})

    # 4. an autoencoder-only pipeline folder for the next stages
    pipeline_dir = out_dir / "pipeline"
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return pipeline_dir
    CosmosPipeline(encoder, model.cpu(), schedule=cfg.schedule, sampling=cfg.sampling).save_pretrained(pipeline_dir)
    print(f"autoencoder pipeline written to {pipeline_dir}")
    return pipeline_dir


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, __doc__, lambda cfg, args: train_autoencoder(cfg, restart=args.restart, cpu=args.cpu))


if __name__ == "__main__":
    main()
