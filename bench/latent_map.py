"""Latent-map placement against umap-learn's own ``transform``, and the map's start-up cost.

    python -m bench.latent_map --pipeline assets/cosmos-cpu-small

``cosmos.projection`` places new latents on the stored map with umap-learn's transform
*initialisation* (membership-weighted mean of the k nearest reference points' stored coordinates), not
with its stochastic layout optimisation, and never refits. This measures what that leaves out, on
this machine:

1. refit UMAP on the map's stored latents with its stored settings (what the app used to do at
   start-up; timed), and take that fit's coordinates as the map;
2. place held-out texts (public-domain prose, validation split) and fresh model samples:
   umap-learn's ``transform`` on the fitted reducer, ``LatentMap.transform`` on the same coordinates,
   its start alone (no refinement), and umap-learn's ``transform`` again with another ``transform_seed``;
3. report the mean and median distance of each to umap-learn's placement in map units (the last one is
   umap-learn's own seed-to-seed spread), beside the map's scale (median distance of a reference point
   to its nearest reference neighbour, and the map's extent).

Start-up: ``LatentMap.load`` plus the first placement, against the load plus refit that was needed before
(the refit's first time in a process, when numba compiles, and the median of ``--repeats``). Writes ``bench/results/latent-map.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from cosmos import CosmosPipeline
from cosmos.projection import LatentMap, fit_umap, flat_latents

HELD_OUT = "../shared/data/public-domain-prose/validation.jsonl"


def held_out_texts(path: str, count: int) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle if line.strip()]
    step = max(1, len(texts) // count)
    return texts[::step][:count]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="assets/cosmos-cpu-small")
    parser.add_argument("--texts", default=HELD_OUT, help="JSONL of {text} held-out passages")
    parser.add_argument("--count", type=int, default=100, help="held-out texts placed")
    parser.add_argument("--samples", type=int, default=32, help="model samples placed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/results/latent-map.json")
    args = parser.parse_args(argv)

    pipe = CosmosPipeline.from_pretrained(args.pipeline)
    fingerprint = pipe.fingerprint                     # computed once, outside the timed loops
    stored = LatentMap.load(args.pipeline, fingerprint=fingerprint)
    queries = {"held-out prose": pipe.encode(held_out_texts(args.texts, args.count))}
    if pipe.can_generate and args.samples:
        queries["model samples"] = pipe.generate(args.samples, seed=1234).latents

    # 1.-2. a fresh fit on this machine, and both placements on its coordinates
    refit_s, load_place_s = [], []
    reducer = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        lmap = LatentMap.load(args.pipeline, fingerprint=fingerprint)
        reducer = fit_umap(flat_latents(lmap.latents), lmap.settings)
        refit_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        LatentMap.load(args.pipeline, fingerprint=fingerprint).transform(queries["held-out prose"][:1])
        load_place_s.append(time.perf_counter() - start)
    fitted = np.asarray(reducer.embedding_, dtype=np.float32)
    on_refit = LatentMap(stored.texts, stored.sources, stored.latents, fitted, stored.settings, stored.fingerprint)
    gaps = {}
    for name, latents in queries.items():
        reducer.transform_seed = 42                                   # umap-learn's default
        theirs = np.asarray(reducer.transform(flat_latents(latents)), dtype=np.float32)
        reducer.transform_seed = 7
        placements = {"ours": on_refit.transform(latents), "ours_start_only": on_refit.transform(latents, refine_epochs=0),
                      "umap_other_seed": np.asarray(reducer.transform(flat_latents(latents)), dtype=np.float32)}
        gaps[name] = {"points": len(theirs)}
        for way, coords in placements.items():
            gap = np.linalg.norm(coords - theirs, axis=1)
            gaps[name][way] = {"mean": round(float(gap.mean()), 4), "median": round(float(np.median(gap)), 4),
                               "p90": round(float(np.quantile(gap, 0.9)), 4)}
    ref = torch.cdist(torch.from_numpy(fitted), torch.from_numpy(fitted))
    ref.fill_diagonal_(float("inf"))
    nn_median = float(ref.min(1).values.median())
    extent = float(np.linalg.norm(fitted.max(0) - fitted.min(0)))
    moved = float(np.linalg.norm(fitted - stored.coords, axis=1).mean())

    result = {
        "pipeline": args.pipeline, "reference_points": len(stored.texts),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "placement_gap_map_units": gaps,
        "map_scale": {"median_nearest_neighbour": round(nn_median, 4), "extent_diagonal": round(extent, 4)},
        "refit_vs_stored_mean_shift": round(moved, 4),
        "startup_s": {"before_load_and_refit_first_in_process": round(refit_s[0], 2),
                      "before_load_and_refit": round(statistics.median(refit_s), 2),
                      "now_load_and_first_placement": round(statistics.median(load_place_s), 3)},
        "repeats": args.repeats,
    }
    print(f"{result['machine']}; {args.pipeline}: {len(stored.texts)} reference points")
    print(f"map scale: nearest reference neighbour (median) {nn_median:.3f}, extent {extent:.2f} map units")
    for name, gap in gaps.items():
        for way in ("ours", "ours_start_only", "umap_other_seed"):
            print(f"{name:>15} ({gap['points']}): {way:>16} vs umap transform: mean {gap[way]['mean']:.3f}, "
                  f"median {gap[way]['median']:.3f}, p90 {gap[way]['p90']:.3f} map units")
    print(f"a refit here moves the stored map by {moved:.3f} map units on average")
    print(f"start-up: load + refit {refit_s[0]:.2f} s the first time in a process (numba compiles), "
          f"{result['startup_s']['before_load_and_refit']:.2f} s median (before) -> "
          f"load + first placement {result['startup_s']['now_load_and_first_placement']:.3f} s (now)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
