"""The autoregressive baseline (issue 5): a decoder-only LM trained on the same windows as Cosmos.

    python -m train.ar --config bench-ar            # resumes if a state exists

Writes ``<run_dir>/ar_train/`` (``state/``, ``metrics.jsonl``) and the model in ``<run_dir>/ar/``, a
:class:`cosmos.ar_lm.ArLanguageModel` folder. The LM sees exactly the windows Cosmos is trained to
generate (the diffusion stage's data, unless ``ar_stage.data`` names other) and learns next-token
prediction on every non-pad position.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from cosmos import FrozenEncoder
from cosmos.ar_lm import ArLanguageModel

from .autoencoder import head_vocabulary
from .cli import run_cli
from .config import TrainConfig
from .data import load_windows
from .loop import (MetricsLog, Throughput, batch_indices, find_state, load_state, machine_description,
                   make_optimizer, save_state, set_lr, stage_fingerprint)


@torch.inference_mode()
def validation_loss(lm: ArLanguageModel, windows: torch.Tensor, batch_size: int = 64) -> float:
    was_training = lm.model.training
    lm.model.eval()
    total = sum(lm.loss(windows[s:s + batch_size]).item() * len(windows[s:s + batch_size])
                for s in range(0, len(windows), batch_size))
    lm.model.train(was_training)
    return total / len(windows)


def train_ar(cfg: TrainConfig, restart: bool = False, cpu: bool = False) -> Path:
    stage = cfg.ar_stage
    data = stage.data or cfg.diffusion_stage.data
    out_dir, model_dir = cfg.path / "ar_train", cfg.path / "ar"
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cpu)
    device, rank = accelerator.device, accelerator.process_index
    torch.manual_seed(cfg.seed + rank)

    # 1. data: the windows Cosmos's diffusion stage uses
    encoder = FrozenEncoder.from_pretrained(cfg.autoencoder.encoder)
    L = cfg.autoencoder.max_length
    train_windows = load_windows(data, "train", encoder, L, cfg.cache_path)
    val_windows = load_windows(data, "validation", encoder, L, cfg.cache_path)
    val_windows = val_windows[torch.randperm(len(val_windows), generator=torch.Generator().manual_seed(0))]
    val_windows = val_windows[:stage.loop.eval_windows]

    # 2. model over the tokens seen in training
    lm = ArLanguageModel.build(cfg.ar, head_vocabulary(train_windows, encoder), encoder, cfg.autoencoder.encoder, L)
    lm.to(device)
    optimizer = make_optimizer(lm.model, stage.optim)
    fingerprint = stage_fingerprint(cfg, ar=cfg.ar, stage=stage, data=len(train_windows), max_length=L)
    start = 0
    saved = find_state(out_dir / "state")
    if saved is not None and not restart:
        start = load_state(saved, lm.model, optimizer, fingerprint=fingerprint, rank=rank)["step"]
        print(f"resuming AR training at step {start}")
    model, optimizer = accelerator.prepare(lm.model, optimizer)
    lm.model = accelerator.unwrap_model(model)
    log = MetricsLog(out_dir / "metrics.jsonl", start) if accelerator.is_main_process else None
    if log is not None and start == 0:
        log.write(step=0, event="start", preset=cfg.preset, machine=machine_description(),
                  processes=accelerator.num_processes, train_windows=len(train_windows),
                  val_windows=len(val_windows), params=lm.num_parameters(), vocab=len(lm.vocab))

    # 3. loop
    optim, loop = stage.optim, stage.loop
    speed, began = Throughput(), time.perf_counter() - 60 * (log.minutes_done if log else 0.0)
    lm.model.train()
    bar = tqdm(range(start, optim.steps), initial=start, total=optim.steps, desc="ar", unit="step")
    for step in bar:
        idx = batch_indices(len(train_windows), optim.batch_size, step, cfg.seed)
        idx = idx[accelerator.process_index::accelerator.num_processes]
        windows = train_windows[idx]
        set_lr(optimizer, optim.lr_at(step))
        with accelerator.autocast():
            loss = lm.loss(windows)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        speed.add(int((windows != encoder.tokenizer.pad_token_id).sum()) * accelerator.num_processes)
        done = step + 1
        if not accelerator.is_main_process:
            continue
        if done % loop.log_every == 0 or done == optim.steps:
            log.write(step=done, loss=loss.item(), lr=optim.lr_at(step), tokens_per_s=round(speed.rate(), 1),
                      minutes=round((time.perf_counter() - began) / 60, 3))
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if done % loop.eval_every == 0 or done == optim.steps:
            val = validation_loss(lm, val_windows)
            samples = lm.generate(stage.sample_count, seed=0)
            lm.model.train()
            log.write(step=done, event="eval", val_loss=val, val_perplexity=float(torch.exp(torch.tensor(val))),
                      samples=samples, minutes=round((time.perf_counter() - began) / 60, 3))
            tqdm.write(f"step {done}: held-out loss {val:.4f} | {samples[0][:80]!r}")
        if done % loop.save_every == 0 or done == optim.steps:
            save_state(out_dir / "state", done, lm.model, optimizer, extra={"fingerprint": fingerprint})

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        lm.model.cpu()
        lm.save_pretrained(model_dir)
        (model_dir / "train_config.json").write_text(json.dumps({"ar": asdict(cfg.ar), "preset": cfg.preset},
                                                                indent=1))
        print(f"AR baseline written to {model_dir}")
    return model_dir


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, __doc__, lambda cfg, args: train_ar(cfg, restart=args.restart, cpu=args.cpu))


if __name__ == "__main__":
    main()
