"""Generation speed on this CPU: latency of ``CosmosPipeline.generate``, split into denoiser and decoder.

For every (batch, steps) pair it times ``pipe.generate(batch, steps, sampler, seed)`` end to end
(1 warmup, then the median of ``--repeats`` runs) and splits the time with generate's own
``progress(done, total)`` callback, which fires after every sampler step:

    sampling ms   start -> the last step's callback: prior noise + ``steps`` sampler steps (denoiser forwards,
                  sampler arithmetic, noise draws)
    decode ms     the last step's callback -> return: denormalise, one decoder pass, argmax, detokenise

It counts FLOPs with ``torch.utils.flop_counter.FlopCounterMode`` (attention through the math SDPA kernel,
so its two matmuls are counted too): one decoder pass (``pipe.decode``) and one generate of a single step,
whose difference is one sampler step, so one generate costs ``steps x step + decode`` FLOPs; it compares
the achieved rate with this machine's fp32 matmul rate, measured in the same run at the same
thread count (median of timed ``n x n`` matmuls, 2 n^3 FLOPs each). Only the pipeline's public API is used.

    python -m bench.speed --pipeline assets/cosmos-cpu-small # a trained pipeline folder
    python -m bench.speed --build-default --repeats 3        # untrained default architecture
    python -m bench.speed --build-default --batches 1 --steps 5 --repeats 2   # quick check

Speed does not depend on the weights, so ``--build-default`` (random weights, the default
``AutoencoderConfig()`` / ``DenoiserConfig()``) measures what a trained default checkpoint would,
except for a trained head restricted to a smaller vocabulary (``head_vocab_size``), which makes
the decoder cheaper. Prints a table and writes everything to ``--out`` (JSON).

Against the autoregressive baseline (issue 5), in one run, as ratios:

    python -m bench.speed --vs-ar                         # L in {64, 128, 256}, batch {1, 16}, steps 25..200

builds, per L, Cosmos with bench-l8's architecture at N = L/8 and the AR LM with bench-ar's architecture
(both untrained: speed does not depend on weights; both with the same 15,117-token output vocabulary as
the trained models), and times ``pipe.generate(B, steps)`` against ``lm.generate_ids(B, L)`` (transformers'
``generate`` with its KV cache, exactly L - 1 new tokens).
At matched quality (issue 19): when ``bench/results/steps.json`` exists (``python -m bench.steps``), each
sampler also gets a row at its smallest step count (and time grid) whose quality matched the 200-step SDE
there. That match was measured on the embedded checkpoint (L = 64); the rows at L = 128 / 256 assume the
same step count suffices at the longer lengths (the denoiser's job per latent is the same; not measured).
Writes ``bench/results/speed-vs-ar.json``.

Run it on an otherwise idle machine: with all cores in use by torch's threads, any other busy
process (a test run, a second benchmark) stalls the thread pool and inflates latencies many
times over. The 1-minute load average before and after is printed and saved; ``--threads 1``
is less sensitive to a busy machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from cosmos import SAMPLERS, AutoencoderConfig, CosmosPipeline, DenoiserConfig, FrozenEncoder

DEFAULT_PIPELINE = "assets/cosmos-cpu-small"  # the embedded default checkpoint


def count_flops(fn) -> int:
    """FLOPs of one call of ``fn()``; SDPA goes through the math kernel so FlopCounterMode sees it."""
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_rate(n: int, repeats: int = 7) -> dict:
    """This machine's fp32 matmul rate in GFLOP/s: median over ``repeats`` timed (n, n) @ (n, n)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warmup
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return {"n": n, "repeats": repeats, "seconds": times,
            "gflops": 2 * n ** 3 / statistics.median(times) / 1e9}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_pipeline(args) -> tuple[CosmosPipeline, str]:
    if args.build_default:
        torch.manual_seed(0)
        pipe = CosmosPipeline.build(AutoencoderConfig(), DenoiserConfig())
        return pipe, "untrained pipeline, default architecture (AutoencoderConfig(), DenoiserConfig()), random weights"
    folder = Path(args.pipeline)
    if not (folder / "model_index.json").is_file():
        sys.exit(f"error: no pipeline folder at {folder}/ (no model_index.json). Pass --pipeline FOLDER, or "
                 "--build-default to time an untrained pipeline of the default architecture "
                 "(speed does not depend on the weights).")
    return CosmosPipeline.from_pretrained(folder), f"checkpoint {folder.resolve()}"


def bench(pipe: CosmosPipeline, batch: int, steps: int, sampler: str, repeats: int) -> dict:
    """1 warmup + ``repeats`` timed generate() calls; medians of total, sampling and decode time (s)."""
    runs = []
    for r in range(repeats + 1):
        marks: list[float] = []
        t0 = time.perf_counter()
        with torch.inference_mode():
            pipe.generate(batch, steps=steps, sampler=sampler, seed=r,
                          progress=lambda done, total: marks.append(time.perf_counter()))
        end = time.perf_counter()
        if len(marks) != steps:  # one generate = one batch chunk: a mark per step
            raise RuntimeError(f"saw {len(marks)} step callbacks, expected {steps}: the split would be wrong")
        if r > 0:  # run 0 is the warmup
            runs.append({"total": end - t0, "sampling": marks[-1] - t0, "decode": end - marks[-1]})
    median = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
    return {"median": median, "runs": runs}


def generate_flops(pipe: CosmosPipeline, batch: int, sampler: str) -> dict[str, int]:
    """FLOPs of one sampler step and of one decode at ``batch`` (public API: a 1-step generate minus a decode)."""
    latents = pipe.generate(batch, steps=1, sampler=sampler, seed=0).latents         # (B, N, d)
    one_step = count_flops(lambda: pipe.generate(batch, steps=1, sampler=sampler, seed=0))
    decode = count_flops(lambda: pipe.decode(latents))
    return {"step": one_step - decode, "decode": decode}


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm")


def profile_steps(pipe: CosmosPipeline, batch: int, sampler: str, steps: int = 20, top: int = 12) -> dict:
    """Where a sampler step's time goes: ``torch.profiler`` over one ``steps``-step generate (after a warmup),
    ops by self CPU time per step; the matmul share is what BLAS spends on the step's own (small) shapes."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        pipe.generate(batch, steps=steps, sampler=sampler, seed=0)
        marks: list[float] = []
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            pipe.generate(batch, steps=steps, sampler=sampler, seed=0,
                          progress=lambda done, total: marks.append(time.perf_counter()))
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    sampling_ms = 1e3 * (marks[-1] - t0) / steps                   # under the profiler: slower than unprofiled
    total_us = sum(e.self_cpu_time_total for e in events)
    ops = [{"op": e.key, "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps, "calls_per_step": e.count / steps,
            "share": e.self_cpu_time_total / total_us} for e in events]
    matmul = sum(o["self_ms_per_step"] for o in ops if o["op"] in MATMUL_OPS)
    return {"batch": batch, "steps": steps, "profiled_ms_per_step": sampling_ms,
            "ops_ms_per_step": total_us / 1e3 / steps, "matmul_ms_per_step": matmul,
            "matmul_share": matmul / (total_us / 1e3 / steps), "top_ops": ops[:top]}


AR_VOCAB = 15117  # rows of the trained models' output layers (tokens seen in cpu-small's training data)


def median_seconds(fn, repeats: int) -> tuple[float, list[float]]:
    """1 warmup + ``repeats`` timed calls of ``fn(run_index)``; (median, all) in seconds."""
    times = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.inference_mode():
            fn(r)
        if r > 0:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def build_family_pair(length: int):
    """(Cosmos pipeline, AR LM) with bench-l8's / bench-ar's architectures at window length ``length``."""
    from cosmos.ar_lm import ArLanguageModel
    from train.config import load_config

    cosmos_cfg, ar_cfg = load_config("bench-l8"), load_config("bench-ar")
    ae = dataclasses.replace(cosmos_cfg.autoencoder, max_length=length, num_latents=length // 8,
                             head_vocab_size=AR_VOCAB)
    dn = dataclasses.replace(cosmos_cfg.denoiser, num_latents=length // 8)
    torch.manual_seed(0)
    pipe = CosmosPipeline.build(ae, dn, sampling=cosmos_cfg.sampling)
    arch = dataclasses.replace(ar_cfg.ar, max_positions=max(length, ar_cfg.ar.max_positions))
    vocab = torch.arange(AR_VOCAB)  # any AR_VOCAB ids that include the specials: the cost is the same
    lm = ArLanguageModel.build(arch, vocab, FrozenEncoder.from_pretrained(ar_cfg.autoencoder.encoder),
                               ar_cfg.autoencoder.encoder, length)
    return pipe, lm


STEPS_RESULTS = Path("bench/results/steps.json")


def matched_settings(path: Path = STEPS_RESULTS) -> dict[str, dict]:
    """{sampler: {"steps", "time_grid", "final_x0"}}: each sampler's fewest steps matching the 200-step SDE in
    ``bench.steps``."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("fewest_matching_steps", {})


def compare_with_ar(lengths: list[int], batches: list[int], steps_list: list[int], repeats: int,
                    sampler: str, matched: dict[str, dict] | None = None) -> list[dict]:
    rows = []
    header = f"{'L':>4} {'batch':>5} {'model':<30} {'latency ms':>10} {'samples/s':>9} {'vs AR (KV)':>10}"
    print(header + "\n" + "-" * len(header))
    for L in lengths:
        pipe, lm = build_family_pair(L)
        pipe.sampling = dataclasses.replace(pipe.sampling, batch_size=max(batches))
        counts = pipe.summary().parameters
        params = {"cosmos_denoiser": counts["denoiser"], "cosmos_decoder_and_head": counts["decoder"] + counts["head"],
                  "ar": lm.num_parameters()}
        for B in batches:
            ar_s, ar_runs = median_seconds(lambda r: lm.generate_ids(B, L, seed=r, stop_at_sep=False), repeats)
            cases = [("AR, KV cache", ar_s, ar_runs, None)]
            for steps in steps_list:
                s, runs = median_seconds(lambda r: pipe.generate(B, steps=steps, sampler=sampler, seed=r), repeats)
                cases.append((f"Cosmos {steps} steps", s, runs, steps))
            default_sampling = pipe.sampling
            for name, match in (matched or {}).items():   # each sampler at its fewest matching steps
                final_x0 = match.get("final_x0", False)
                pipe.sampling = dataclasses.replace(default_sampling, time_grid=match["time_grid"], final_x0=final_x0)
                s, runs = median_seconds(lambda r: pipe.generate(B, steps=match["steps"], sampler=name, seed=r),
                                         repeats)
                label = f"{name} {match['steps']} ({match['time_grid']}{', x0 end' if final_x0 else ''}), matched"
                cases.append((label, s, runs, match["steps"]))
            pipe.sampling = default_sampling
            for name, s, runs, steps in cases:
                row = {"length": L, "latents": L // 8, "batch": B, "model": name, "steps": steps,
                       "matched_quality": name.endswith("matched"),
                       "latency_ms": 1e3 * s, "samples_per_s": B / s, "speedup_vs_ar_kv": ar_s / s,
                       "runs_s": runs, "params": params}
                rows.append(row)
                print(f"{L:>4} {B:>5} {name:<30} {row['latency_ms']:>10.1f} {row['samples_per_s']:>9.2f} "
                      f"{row['speedup_vs_ar_kv']:>9.2f}x", flush=True)
    return rows


def main_vs_ar(args) -> None:
    load_before = os.getloadavg()[0]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"machine  : {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads; 1-min load average before {load_before:.2f}"
          + (" -- other processes are busy: latencies may be inflated" if load_before > 0.5 else ""))
    print(f"timing   : median of {args.repeats} runs after 1 warmup")
    matched = matched_settings()
    if matched:
        print(f"matched  : fewest steps matching 200-step SDE quality ({STEPS_RESULTS}): "
              + ", ".join(f"{k} {v['steps']} ({v['time_grid']})" for k, v in matched.items()))
    rows = compare_with_ar(args.lengths, args.batches, args.steps, args.repeats, args.sampler, matched)
    report = {"benchmark": "bench.speed --vs-ar",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "torch": torch.__version__, "loadavg_1min_before": load_before,
                          "loadavg_1min_after": os.getloadavg()[0]},
              "settings": {"lengths": args.lengths, "batches": args.batches, "steps": args.steps,
                           "repeats": args.repeats, "warmup": 1, "sampler": args.sampler, "vocab": AR_VOCAB,
                           "matched_quality_settings": matched},
              "results": rows}
    out = Path(args.out if args.out != "bench/results/speed.json" else "bench/results/speed-vs-ar.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="pipeline folder (default: %(default)s)")
    parser.add_argument("--build-default", action="store_true",
                        help="time a freshly built untrained pipeline of the default architecture instead")
    parser.add_argument("--vs-ar", action="store_true", help="Cosmos vs the AR baseline at --lengths (see above)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256], help="window lengths (--vs-ar)")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="default 1 8 (--vs-ar: 1 16)")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="default 25 50 200 (--vs-ar: 25 50 100 200)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per setting, after 1 warmup")
    parser.add_argument("--sampler", default="sde", choices=sorted(SAMPLERS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n reference matmul")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the sampler steps at each batch (torch.profiler op table)")
    parser.add_argument("--out", default="bench/results/speed.json")
    args = parser.parse_args(argv)
    args.batches = args.batches or ([1, 16] if args.vs_ar else [1, 8])
    args.steps = args.steps or ([25, 50, 100, 200] if args.vs_ar else [25, 50, 200])
    if args.repeats < 1 or min(args.batches) < 1 or min(args.steps) < 1:
        parser.error("--repeats, --batches and --steps must be >= 1")
    if args.vs_ar:
        if min(args.lengths) < 8 or any(L % 8 for L in args.lengths):
            parser.error("--lengths must be multiples of 8 (N = L/8 latents)")
        return main_vs_ar(args)

    load_before = os.getloadavg()[0]  # other processes' load, before we add ours
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    pipe, source = load_pipeline(args)
    if not pipe.can_generate:
        sys.exit(f"error: {source} has no denoiser (autoencoder-only checkpoint); nothing to generate with")
    # One generate = one batch: no chunking, so FLOPs per call are those of a batch-B forward.
    pipe.sampling = dataclasses.replace(pipe.sampling, batch_size=max(pipe.sampling.batch_size, *args.batches))
    summary = pipe.summary()
    counts = summary.parameters

    # 1. the machine's matmul rate, at the thread count used below
    peak = matmul_rate(args.matmul_size)

    # 2. FLOPs of one sampler step and one decode per batch size
    flops = {B: generate_flops(pipe, B, args.sampler) for B in args.batches}

    print(f"pipeline : {source}")
    print(f"model    : denoiser {summary.denoiser} on N={summary.num_latents} latents "
          f"({counts['denoiser'] / 1e6:.1f}M params); decoder + head on L={summary.max_length} tokens "
          f"({(counts['decoder'] + counts['head']) / 1e6:.1f}M params): {summary.autoencoder}")
    print(f"machine  : {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads; fp32 matmul {args.matmul_size}^2: {peak['gflops']:.1f} GFLOP/s")
    print(f"sampler  : {args.sampler}; median of {args.repeats} runs after 1 warmup; "
          "ms/step = sampling / steps; x bound = ms/step over the step's FLOPs at the matmul rate; "
          "GFLOP/call = steps x step + decode")
    print(f"load     : 1-min load average {load_before:.2f} before starting"
          + (" -- other processes are busy: latencies may be inflated" if load_before > 0.5 else ""))
    for B in args.batches:
        print(f"flops    : batch {B}: {flops[B]['step'] / 1e9:.3f} GFLOP/step, "
              f"decode {flops[B]['decode'] / 1e9:.3f} GFLOP")
    header = (f"{'batch':>5} {'steps':>5} {'total ms':>9} {'sampling ms':>11} {'decode ms':>10} "
              f"{'ms/step':>7} {'x bound':>7} {'samples/s':>9} {'GFLOP/call':>10} {'GFLOP/s':>8} {'% peak':>6}")
    print()
    print(header)
    print("-" * len(header))

    rows = []
    for B in args.batches:
        for steps in args.steps:
            result = bench(pipe, B, steps, args.sampler, args.repeats)
            m = result["median"]
            total_flops = steps * flops[B]["step"] + flops[B]["decode"]
            achieved = total_flops / m["total"] / 1e9
            row = {
                "batch": B, "steps": steps,
                "total_ms": 1e3 * m["total"], "sampling_ms": 1e3 * m["sampling"], "decode_ms": 1e3 * m["decode"],
                "ms_per_step": 1e3 * m["sampling"] / steps,
                "samples_per_s": B / m["total"],
                "gflop_per_step": flops[B]["step"] / 1e9,
                "decode_gflop": flops[B]["decode"] / 1e9,
                "gflop_per_call": total_flops / 1e9,
                "achieved_gflops": achieved,
                "sampling_achieved_gflops": steps * flops[B]["step"] / m["sampling"] / 1e9,
                "decode_achieved_gflops": flops[B]["decode"] / m["decode"] / 1e9,
                "fraction_of_matmul_peak": achieved / peak["gflops"],
                # issue 19's target: a step within 2x of its FLOPs at the measured matmul rate
                "step_vs_flop_bound": (m["sampling"] / steps) / (flops[B]["step"] / (peak["gflops"] * 1e9)),
                "runs_s": result["runs"],
            }
            rows.append(row)
            print(f"{B:>5} {steps:>5} {row['total_ms']:>9.1f} {row['sampling_ms']:>11.1f} {row['decode_ms']:>10.1f} "
                  f"{row['ms_per_step']:>7.2f} {row['step_vs_flop_bound']:>7.1f} {row['samples_per_s']:>9.2f} "
                  f"{row['gflop_per_call']:>10.2f} {achieved:>8.1f} {100 * row['fraction_of_matmul_peak']:>5.1f}%",
                  flush=True)

    profiles = []
    if args.profile:   # after the timings, so the profiler's own cost does not touch them
        for B in args.batches:
            prof = profile_steps(pipe, B, args.sampler)
            profiles.append(prof)
            bound = flops[B]["step"] / (peak["gflops"] * 1e9) * 1e3
            print(f"\nprofile, batch {B} ({prof['steps']} steps under torch.profiler): "
                  f"{prof['ops_ms_per_step']:.2f} ms of ops per step, matmuls {prof['matmul_ms_per_step']:.2f} ms "
                  f"({100 * prof['matmul_share']:.0f}%: {flops[B]['step'] / 1e6 / prof['matmul_ms_per_step']:.1f} "
                  f"GFLOP/s at the step's own shapes); the step's FLOPs at the {args.matmul_size}^2 rate: {bound:.2f} ms")
            print(f"{'op':<52} {'ms/step':>8} {'calls/step':>10} {'share':>6}")
            for o in prof["top_ops"]:
                print(f"{o['op'][:52]:<52} {o['self_ms_per_step']:>8.3f} {o['calls_per_step']:>10.1f} "
                      f"{100 * o['share']:>5.1f}%")

    load_after = os.getloadavg()[0]
    print(f"\n1-min load average after: {load_after:.2f} (this benchmark itself adds about "
          f"{torch.get_num_threads()})")
    report = {
        "benchmark": "bench.speed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pipeline": {"source": source, "folder": None if args.build_default else str(Path(args.pipeline).resolve()),
                     "untrained_default": args.build_default},
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch_interop_threads": torch.get_num_interop_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "platform": platform.platform(),
                    "matmul_fp32": peak, "loadavg_1min_before": load_before, "loadavg_1min_after": load_after},
        "settings": {"batches": args.batches, "steps": args.steps, "repeats": args.repeats, "warmup": 1,
                     "sampler": args.sampler},
        "configs": summary.configs,
        "params": counts,
        "results": rows,
        "profiles": profiles,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
