"""Quality against sampler steps (issue 19): how few steps give the 200-step text, and how fast that is.

    python -m bench.steps                                   # the embedded default, every sampler, 3 seeds x 128
    python -m bench.steps --samplers sde dpm2m --steps 10 25 --seeds 2 --samples 64    # a quick look
    python -m bench.steps --final-x0 --append --samplers sde dpm2m --steps 10 25 50 --grid-steps   # more rows
    python -m bench.steps --retime                          # time the rows of the last result again (idle machine)

For every sampler (``cosmos.SAMPLERS``) at every step count, and for the deterministic samplers also on
the log-SNR time grid at the smaller step counts (``--grid-steps``: with many steps both grids converge
to the same ODE solution), it draws ``--samples`` unconditional samples per seed and scores them exactly
as ``bench.quality`` does, against held-out windows drawn with the same seed:

    MAUVE       samples vs held-out TinyStories windows (``bench.quality.mauve_score``, same features)
    diversity   product over n = 2, 3, 4 of unique / total word n-grams
    gen. PPL    median perplexity under the AR baseline (``bench-ar``)

and times ``pipe.generate(B, steps)`` at ``--speed-batches`` (median of ``--repeats`` after a warmup;
run it on an otherwise idle machine). The AR baseline is one more point: its own samples scored the
same way (its gen. PPL is self-scored) and ``generate_ids(B, L)`` timed with its KV cache.

The reference is the paper's setting, the SDE sampler at 200 steps on the uniform grid. A setting
*matches* it when no metric is worse than the reference's mean by more than the reference's spread
over seeds (std): MAUVE >= ref - std, diversity >= ref - std, gen. PPL <= ref + std. The printed
recommendation is the fastest matching setting: the fewest steps (every sampler calls the denoiser once
a step), ties broken by samples per second at the first speed batch (4: the app's default request);
``--final-x0`` adds rows that end on the last x0 estimate (``SamplingConfig.final_x0``). ``--vs-ar`` in ``bench.speed`` times each sampler at its smallest
matching step count. Writes ``bench/results/steps.json``; ``python -m bench.report`` draws the figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import torch

from bench.quality import (DATA, JUDGE, diversity, held_out_windows, load_model, mauve_featurizer, mauve_score,
                           read_texts, seeded_subset, spread)
from bench.speed import cpu_model, median_seconds
from cosmos import SAMPLERS, TIME_GRIDS, CosmosPipeline, FrozenEncoder
from cosmos.ar_lm import ArLanguageModel

DEFAULT_PIPELINE = "assets/cosmos-cpu-small"
OUT = Path("bench/results/steps.json")
REFERENCE = {"sampler": "sde", "time_grid": "uniform", "steps": 200, "final_x0": False}
HIGHER_IS_BETTER = {"mauve": True, "diversity": True, "gen_ppl": False}


@dataclasses.dataclass(frozen=True)
class Setting:
    sampler: str
    time_grid: str
    steps: int
    final_x0: bool = False     # SamplingConfig.final_x0: end on the last x0 estimate instead of the state

    @property
    def name(self) -> str:
        return f"{self.sampler}/{self.time_grid}/{self.steps}" + ("/x0" if self.final_x0 else "")


def settings(samplers: list[str], steps: list[int], grid_steps: list[int], final_x0: bool = False) -> list[Setting]:
    """Every sampler on the uniform grid at every step count, then the ODE samplers on the log-SNR grid."""
    rows = [Setting(s, "uniform", n, final_x0) for s in samplers for n in steps]
    rows += [Setting(s, "logsnr", n, final_x0) for s in samplers if s != "sde" for n in grid_steps]
    return rows


def score(texts: list[str], reference: list[str], seed: int, featurize, judge: ArLanguageModel) -> dict[str, float]:
    return {"mauve": mauve_score(featurize, texts, reference, seed), "diversity": diversity(texts),
            "gen_ppl": statistics.median(judge.perplexities([t or "." for t in texts]))}


def quality(sample, seeds: int, samples: int, windows: list[str], featurize, judge) -> dict:
    """``sample(num, seed) -> texts``, scored per seed against ``samples`` held-out windows of that seed."""
    runs: dict[str, list[float]] = {k: [] for k in HIGHER_IS_BETTER}
    example: list[str] = []
    for seed in range(seeds):
        texts = sample(samples, seed)
        for key, value in score(texts, seeded_subset(windows, samples, 1000 + seed), seed, featurize, judge).items():
            runs[key].append(value)
        example = example or texts[:3]
    return {**{k: spread(v) for k, v in runs.items()}, "example_samples": example}


def matches(row: dict, reference: dict) -> bool:
    """No metric worse than the reference's mean by more than the reference's std over seeds."""
    for key, higher in HIGHER_IS_BETTER.items():
        ref, value = reference[key], row[key]["mean"]
        if (value < ref["mean"] - ref["std"]) if higher else (value > ref["mean"] + ref["std"]):
            return False
    return True


def timed(pipe: CosmosPipeline, setting: Setting, speed_batches: list[int], repeats: int) -> dict[str, float]:
    """Samples per second of ``setting`` at each batch (median of ``repeats`` after a warmup)."""
    return measure(pipe, setting, seeds=0, samples=0, windows=[], featurize=None, judge=None,
                   speed_batches=speed_batches, repeats=repeats)["samples_per_s"]


def measure(pipe: CosmosPipeline, setting: Setting, *, seeds: int, samples: int, windows: list[str], featurize,
            judge: ArLanguageModel, speed_batches: list[int], repeats: int) -> dict:
    """One row: samples per second at each speed batch, then quality over seeds, of ``setting`` on ``pipe``."""
    sampling = dataclasses.replace(pipe.sampling, time_grid=setting.time_grid, final_x0=setting.final_x0,
                                   batch_size=max(pipe.sampling.batch_size, samples, *speed_batches))

    def run(num: int, seed: int) -> list[str]:
        default, pipe.sampling = pipe.sampling, sampling
        try:
            with torch.inference_mode():
                return pipe.generate(num, steps=setting.steps, sampler=setting.sampler, seed=seed).texts
        finally:
            pipe.sampling = default

    speed = {str(b): b / median_seconds(lambda r: run(b, r), repeats)[0] for b in speed_batches}
    started = time.perf_counter()
    row = {**dataclasses.asdict(setting), "name": setting.name, "samples_per_s": speed,
           **(quality(run, seeds, samples, windows, featurize, judge) if seeds else {})}
    return {**row, "minutes": round((time.perf_counter() - started) / 60, 2)}


def measure_ar(judge: ArLanguageModel, length: int, *, seeds: int, samples: int, windows: list[str], featurize,
               speed_batches: list[int], repeats: int) -> dict:
    """The AR point: its KV-cached ``generate_ids(B, L)`` timed, its own samples scored (gen. PPL self-scored)."""
    speed = {str(b): b / median_seconds(lambda r: judge.generate_ids(b, length, seed=r, stop_at_sep=False),
                                        repeats)[0] for b in speed_batches}
    return {"samples_per_s": speed,
            **(quality(lambda num, seed: judge.generate(num, seed=seed), seeds, samples, windows, featurize, judge)
               if seeds else {})}


def recommend(rows: list[dict], speed_batch: int) -> tuple[str | None, dict[str, dict]]:
    """Mark each row's ``matches_reference``; return the fastest matching setting's name (fewest steps, then
    most samples per second at ``speed_batch``) and, per sampler, its fewest matching steps ({"steps",
    "time_grid", "final_x0"}). Without the reference row: (None, {})."""
    reference = next((r for r in rows if all(r.get(k, False) == v for k, v in REFERENCE.items())), None)
    if reference is None:
        return None, {}
    ref = {k: reference[k] for k in HIGHER_IS_BETTER}
    for row in rows:
        row["matches_reference"] = matches(row, ref)
    matching = [r for r in rows if r["matches_reference"]]
    # every sampler calls the denoiser once per step, so fewer steps is faster; timing breaks ties
    fastest = min(matching, key=lambda r: (r["steps"], -r["samples_per_s"][str(speed_batch)]))["name"]
    fewest = {}
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        hits = sorted((r for r in matching if r["sampler"] == sampler),
                      key=lambda r: (r["steps"], r.get("final_x0", False), r["time_grid"]))
        if hits:
            fewest[sampler] = {k: hits[0].get(k, False) for k in ("steps", "time_grid", "final_x0")}
    return fastest, fewest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="pipeline folder (default: %(default)s)")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100, 200])
    parser.add_argument("--grid-steps", type=int, nargs="*", default=[10, 25, 50],
                        help="step counts at which the ODE samplers also run on the log-SNR grid")
    parser.add_argument("--samples", type=int, default=128, help="samples per seed (and held-out windows)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--speed-batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting and batch, after 1 warmup")
    parser.add_argument("--judge", default=JUDGE, help="AR model that scores perplexities (preset or folder)")
    parser.add_argument("--mauve-features", default="auto", help="as in bench.quality")
    parser.add_argument("--final-x0", action="store_true",
                        help="end every run on its last x0 estimate (SamplingConfig.final_x0) instead of the state")
    parser.add_argument("--append", action="store_true",
                        help="add these rows to the result already in --out (same pipeline, samples and seeds)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--retime", action="store_true",
                        help="only time again every row of --out (same batches) on a quiet machine; keep its quality")
    args = parser.parse_args(argv)
    if args.retime:
        return retime(Path(args.out), args.repeats)
    if min(args.steps + args.grid_steps + args.speed_batches) < 1 or args.samples < 2 or args.seeds < 1:
        parser.error("--steps, --grid-steps and --speed-batches must be >= 1, --samples >= 2, --seeds >= 1")

    load_before = os.getloadavg()[0]
    pipe = CosmosPipeline.from_pretrained(args.pipeline)
    if not pipe.can_generate:
        raise SystemExit(f"error: {args.pipeline} has no denoiser: nothing to sample")
    judge = load_model(args.judge)[1]
    encoder = FrozenEncoder.from_pretrained()
    featurize = mauve_featurizer(args.mauve_features, encoder, pipe.max_length)
    windows = held_out_windows(read_texts(DATA / "test.jsonl"), encoder.tokenizer, pipe.max_length)
    common = dict(seeds=args.seeds, samples=args.samples, windows=windows, featurize=featurize,
                  speed_batches=args.speed_batches, repeats=args.repeats)
    print(f"pipeline {args.pipeline}; judge {args.judge}; MAUVE features: {featurize.name}; "
          f"{args.seeds} seeds x {args.samples} samples; torch threads {torch.get_num_threads()}; "
          f"1-min load average {load_before:.2f}", flush=True)
    header = (f"{'setting':<22} {'MAUVE':>13} {'diversity':>13} {'gen. PPL':>13} "
              + " ".join(f"{'samples/s B=' + str(b):>14}" for b in args.speed_batches))
    print(header + "\n" + "-" * len(header), flush=True)

    def show(name: str, row: dict) -> None:
        metrics = " ".join(f"{row[k]['mean']:>7.3f}±{row[k]['std']:<5.3f}" for k in HIGHER_IS_BETTER)
        speed = " ".join(f"{row['samples_per_s'][str(b)]:>14.2f}" for b in args.speed_batches)
        print(f"{name:<22} {metrics} {speed}", flush=True)

    out = Path(args.out)
    before = json.loads(out.read_text(encoding="utf-8")) if args.append and out.is_file() else None
    if before is not None and (before["pipeline"], before["settings"]["samples"], before["settings"]["seeds"]) != \
            (args.pipeline, args.samples, args.seeds):
        raise SystemExit(f"error: {out} measured another pipeline or sample count; --append needs the same")
    rows = list(before["rows"]) if before else []
    for setting in settings(args.samplers, args.steps, args.grid_steps, args.final_x0):
        if any(r["name"] == setting.name for r in rows):
            continue                                     # measured already (--append)
        rows.append(measure(pipe, setting, judge=judge, **common))
        show(setting.name, rows[-1])
    if before:
        ar = before["ar"]
    else:
        ar = {"name": f"AR ({args.judge}, KV cache)", **measure_ar(judge, pipe.max_length, **common)}
        show("AR (KV cache)", ar)

    recommended, fewest = recommend(rows, args.speed_batches[0])
    if recommended:
        print(f"\nmatching the 200-step SDE: {', '.join(r['name'] for r in rows if r['matches_reference'])}")
        print(f"fastest matching at batch {args.speed_batches[0]}: {recommended}")
    report = {"benchmark": "bench.steps",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "pipeline": args.pipeline, "judge": args.judge,
              "settings": {"samples": args.samples, "seeds": args.seeds,
                           "steps": sorted({r["steps"] for r in rows}), "speed_batches": args.speed_batches,
                           "repeats": args.repeats, "mauve_features": featurize.name, "time_grids": TIME_GRIDS,
                           "reference": REFERENCE, "match_rule": "no metric worse than reference mean by > its std"},
              "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "torch": torch.__version__, "loadavg_1min_before": load_before,
                          "loadavg_1min_after": os.getloadavg()[0]},
              "rows": rows, "ar": ar, "recommended": recommended, "fewest_matching_steps": fewest}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def retime(path: Path, repeats: int) -> None:
    """Time every row (and the AR point) of an existing result again; quality columns are kept as measured."""
    report = json.loads(path.read_text(encoding="utf-8"))
    batches = report["settings"]["speed_batches"]
    pipe = CosmosPipeline.from_pretrained(report["pipeline"])
    load_before = os.getloadavg()[0]
    for row in report["rows"]:
        setting = Setting(row["sampler"], row["time_grid"], row["steps"], row.get("final_x0", False))
        row["samples_per_s"] = timed(pipe, setting, batches, repeats)
        print(f"{row['name']:<22} " + " ".join(f"{row['samples_per_s'][str(b)]:>8.2f}" for b in batches), flush=True)
    judge = load_model(report["judge"])[1]
    report["ar"]["samples_per_s"] = measure_ar(judge, pipe.max_length, seeds=0, samples=0, windows=[], featurize=None,
                                               speed_batches=batches, repeats=repeats)["samples_per_s"]
    report["recommended"], report["fewest_matching_steps"] = recommend(report["rows"], batches[0])
    report["machine"].update(loadavg_1min_before=load_before, loadavg_1min_after=os.getloadavg()[0],
                             retimed=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    report["settings"]["repeats"] = repeats
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"fastest matching at batch {batches[0]}: {report['recommended']}\nwrote {path}")


if __name__ == "__main__":
    main()
