"""Stage 1: train the Cosmos autoencoder (compressor + decoder) on frozen-encoder features.

    python -m train.autoencoder --config cpu-small            # resumes if a state exists
    python -m train.autoencoder --config tiny --set autoencoder_stage.optim.steps=20 --restart

Writes ``<run_dir>/autoencoder/``: ``state/`` (resumable), ``metrics.jsonl`` and ``pipeline/``
(an autoencoder-only CosmosPipeline folder that the next stages load).
Method: "Autoencoder training" (loss = CE + MSE alignment, augmentations, AdamW + warmup + cosine).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from cosmos import CosmosAutoencoder, CosmosPipeline, FrozenEncoder
from cosmos.checkpoint import count_parameters
from cosmos.config import ConfigError
from cosmos.metrics import token_accuracy
from cosmos.normalization import MomentAccumulator

from .cli import run_cli
from .config import TrainConfig
from .data import cached_features, encode_features, load_windows
from .loop import (Stage, StepOutput, fresh_start, init_weights_from, run, save_atomic, stage_fingerprint,
                   start_accelerator)


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
    cache_dir = cfg.cache_path
    accelerator = start_accelerator(cfg, cpu)  # each process draws its own augmentation noise
    device = accelerator.device

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
    fresh = fresh_start(cfg.autoencoder_stage_dir, restart)
    if stage.init_from is not None and fresh:
        source = CosmosPipeline.from_pretrained(stage.init_from).autoencoder
        init_weights_from(autoencoder, source)
        print(f"autoencoder initialised from {stage.init_from}")
    elif stage.probe_head and fresh:
        probe = cached_probe_head(autoencoder, sample_features, train_windows[sample], cache_dir)
        print(f"output head initialised as a linear probe on the features: {probe:.3f} token accuracy")
    autoencoder.to(device)
    stage_config = dataclasses.asdict(stage)
    for name, unset in (("init_from", None), ("augment_clean_steps", 0), ("augment_ramp_steps", 0)):
        if stage_config[name] == unset:  # unset: as states saved before the field existed
            stage_config.pop(name)

    # 3. the loop: a batch is windows + their features; the loss is the autoencoder's (CE + MSE alignment)
    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = train_windows[idx].to(device)                                                   # (B, L)
        mask = ids != pad
        feats = features[idx].to(device, torch.float32) if features is not None else encoder(ids, mask)  # (B, L, D)
        return feats, mask, ids

    def loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> StepOutput:
        feats, mask, ids = batch
        out = model(feats, mask, ids)
        return StepOutput(out.loss, {"ce": out.ce, "mse": out.mse, "accuracy": out.accuracy}, int(mask.sum()))

    def evaluate() -> tuple[dict, str]:
        val_acc = reconstruction_accuracy(autoencoder, encoder, val_windows, val_features)
        autoencoder.eval()
        with torch.inference_mode():
            z = autoencoder.encode(val_features[:3].to(device, torch.float32), val_windows[:3].to(device) != pad)
            texts = CosmosPipeline(encoder, autoencoder).to(device).decode(z)
        autoencoder.train()
        return ({"val_accuracy": val_acc, "reconstructions": texts},
                f"held-out token accuracy {val_acc:.4f} | {texts[0][:80]!r}")

    def save_artefacts() -> None:  # 4. an autoencoder-only pipeline folder for the next stages
        pipe = CosmosPipeline(encoder, autoencoder.cpu(), schedule=cfg.schedule, sampling=cfg.sampling)
        pipe.save_pretrained(cfg.autoencoder_dir)
        print(f"autoencoder pipeline written to {cfg.autoencoder_dir}")

    run(cfg, accelerator, Stage(
        name="autoencoder", folder=cfg.autoencoder_stage_dir, log=cfg.autoencoder_log, model=autoencoder,
        optim=stage.optim, loop=stage.loop, num_items=len(train_windows),
        fingerprint=stage_fingerprint(cfg, autoencoder=cfg.autoencoder, stage=stage_config, data=len(train_windows)),
        batch=batch, loss=loss, evaluate=evaluate, save_artefacts=save_artefacts,
        before_step=lambda step: setattr(autoencoder, "augment_strength", stage.augment_strength(step)),
        start_record=dict(train_windows=len(train_windows), val_windows=len(val_windows),
                          trainable_params=count_parameters(autoencoder, trainable_only=True),
                          head_vocab=autoencoder.cfg.output_vocab_size)), restart)
    return cfg.autoencoder_dir


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, __doc__, lambda cfg, args: train_autoencoder(cfg, restart=args.restart, cpu=args.cpu))


if __name__ == "__main__":
    main()
