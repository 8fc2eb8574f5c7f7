"""Train the benchmark family (issue 5) with ``train/``, one preset after another, skipping finished work.

    python -m bench.baselines                 # every model below, in order
    python -m bench.baselines --only bench-l8 bench-ar
    python -m bench.baselines --list          # what is trained, what is missing

Every Cosmos variant is a ``train/configs/bench-*.toml`` preset trained by the same four stages a user
runs (autoencoder, latent_stats, diffusion; the pipeline lands in ``<run_dir>/pipeline``); the
autoregressive baseline is ``python -m train.ar --config bench-ar``. A stage whose output exists is
skipped, so an interrupted run picks up where it stopped (the stages themselves resume from their
last saved state too). All variants share one budget (see ``bench-l8.toml``) so the rows compare.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from train.config import load_config


@dataclass(frozen=True)
class Baseline:
    preset: str
    label: str        # the row name in docs/benchmarks.md
    kind: str         # "cosmos" | "ar"


BASELINES = (   # in training order: the most informative rows first
    Baseline("bench-l8", "Cosmos N=L/8 (8 latents)", "cosmos"),
    Baseline("bench-ar", "autoregressive LM (KV cache)", "ar"),
    Baseline("bench-ce-only", "Cosmos N=L/8, CE-only autoencoder", "cosmos"),
    Baseline("bench-l1", "no compression, N=L (64 latents)", "cosmos"),
    Baseline("bench-l16", "Cosmos N=L/16 (4 latents)", "cosmos"),
    Baseline("bench-l4", "Cosmos N=L/4 (16 latents)", "cosmos"),
    Baseline("bench-chunk-l8", "Cosmos N=L/8, chunk-local autoencoder", "cosmos"),
    Baseline("bench-chunk-ce-only", "Cosmos N=L/8, chunk-local, CE-only autoencoder", "cosmos"),
    Baseline("bench-chunk-l4", "Cosmos N=L/4, chunk-local autoencoder", "cosmos"),
    Baseline("bench-chunk-curriculum", "Cosmos N=L/8, chunk-local, augmentation curriculum", "cosmos"),
    Baseline("bench-chunk-curriculum-paper", "Cosmos N=L/8, chunk-local, curriculum to the paper's augmentations",
             "cosmos"),
)
BY_PRESET = {b.preset: b for b in BASELINES}


def model_dir(preset: str) -> Path:
    """Where a trained model of the family lives: a Cosmos pipeline folder or the AR model folder."""
    cfg = load_config(preset)
    return cfg.ar_model_dir if BY_PRESET[preset].kind == "ar" else cfg.pipeline_dir


def stages(b: Baseline) -> list[tuple[str, Path]]:
    """(module, output that proves the stage finished) in the order they must run."""
    cfg = load_config(b.preset)
    if b.kind == "ar":
        return [("train.ar", cfg.ar_model_dir / "config.json")]
    return [("train.autoencoder", cfg.autoencoder_dir / "model_index.json"),
            ("train.latent_stats", cfg.latents_dir / "stats.safetensors"),
            ("train.diffusion", cfg.pipeline_dir / "model_index.json")]


def train(baselines: list[Baseline]) -> None:
    for b in baselines:
        for module, done in stages(b):
            if done.is_file():
                print(f"[{b.preset}] {module}: done ({done})", flush=True)
                continue
            print(f"[{b.preset}] {module} ...", flush=True)
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", module, "--config", b.preset])
            if result.returncode != 0:
                raise SystemExit(f"error: {module} --config {b.preset} failed (exit {result.returncode})")
            print(f"[{b.preset}] {module}: {(time.perf_counter() - start) / 60:.1f} min", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BY_PRESET), help="train only these presets")
    parser.add_argument("--list", action="store_true", help="print what is trained and exit")
    args = parser.parse_args(argv)
    chosen = [BY_PRESET[p] for p in args.only] if args.only else list(BASELINES)
    if args.list:
        for b in chosen:
            status = "trained" if all(done.is_file() for _, done in stages(b)) else "missing"
            print(f"{b.preset:15s} {status:8s} {b.label}")
        return
    train(chosen)


if __name__ == "__main__":
    main()
