"""The autoregressive baseline (issue 5): a decoder-only LM trained on the same windows as Cosmos.

    python -m train.ar --config bench-ar            # resumes if a state exists

Writes ``<run_dir>/ar_train/`` (``state/``, ``metrics.jsonl``) and the model in ``<run_dir>/ar/``, a
:class:`cosmos.ar_lm.ArLanguageModel` folder. The LM sees exactly the windows Cosmos is trained to
generate (the diffusion stage's data, unless ``ar_stage.data`` names other) and learns next-token
prediction on every non-pad position.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from cosmos import FrozenEncoder
from cosmos.ar_lm import ArLanguageModel

from .autoencoder import head_vocabulary
from .cli import run_cli
from .config import TrainConfig
from .data import load_windows
from .loop import Stage, StepOutput, run, stage_fingerprint, start_accelerator


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
    accelerator = start_accelerator(cfg, cpu)
    device = accelerator.device

    # 1. data: the windows Cosmos's diffusion stage uses
    encoder = FrozenEncoder.from_pretrained(cfg.autoencoder.encoder)
    L, pad = cfg.autoencoder.max_length, encoder.tokenizer.pad_token_id
    train_windows = load_windows(data, "train", encoder, L, cfg.cache_path)
    val_windows = load_windows(data, "validation", encoder, L, cfg.cache_path)
    val_windows = val_windows[torch.randperm(len(val_windows), generator=torch.Generator().manual_seed(0))]
    val_windows = val_windows[:stage.loop.eval_windows]

    # 2. model over the tokens seen in training
    lm = ArLanguageModel.build(cfg.ar, head_vocabulary(train_windows, encoder), encoder, cfg.autoencoder.encoder, L)
    lm.to(device)

    # 3. the loop: a batch is token windows (B, L); the loss is next-token cross-entropy on non-pad positions
    def loss(model: torch.nn.Module, windows: torch.Tensor) -> StepOutput:  # through lm.model, the module `model` wraps
        return StepOutput(lm.loss(windows), {}, int((windows != pad).sum()))

    def evaluate() -> tuple[dict, str]:
        val = validation_loss(lm, val_windows)
        samples = lm.generate(stage.sample_count, seed=0)
        lm.model.train()
        return (dict(val_loss=val, val_perplexity=float(torch.exp(torch.tensor(val))), samples=samples),
                f"held-out loss {val:.4f} | {samples[0][:80]!r}")

    def save_artefacts() -> None:  # 4. the model folder
        lm.model.cpu()
        lm.save_pretrained(cfg.ar_model_dir)
        (cfg.ar_model_dir / "train_config.json").write_text(json.dumps({"ar": asdict(cfg.ar), "preset": cfg.preset},
                                                                       indent=1))
        print(f"AR baseline written to {cfg.ar_model_dir}")

    run(cfg, accelerator, Stage(
        name="AR", folder=cfg.ar_stage_dir, log=cfg.ar_log, model=lm.model, optim=stage.optim, loop=stage.loop,
        num_items=len(train_windows),
        fingerprint=stage_fingerprint(cfg, ar=cfg.ar, stage=stage, data=len(train_windows), max_length=L),
        batch=lambda idx: train_windows[idx], loss=loss, evaluate=evaluate, save_artefacts=save_artefacts,
        start_record=dict(train_windows=len(train_windows), val_windows=len(val_windows),
                          params=lm.num_parameters(), vocab=len(lm.vocab))), restart)
    return cfg.ar_model_dir


def main(argv: list[str] | None = None) -> None:
    run_cli(argv, __doc__, lambda cfg, args: train_ar(cfg, restart=args.restart, cpu=args.cpu))


if __name__ == "__main__":
    main()
