"""Infill on held-out windows (issue 18): does a rewritten span fit the text around it?

    python -m bench.infill                                    # the embedded checkpoint, both tasks
    python -m bench.infill --pipeline my-cosmos --windows 64 --variants 4 --seeds 2 --steps 100

For ``--windows`` held-out TinyStories windows of L tokens (cut as training cuts them, ``bench.quality``),
drawn once with seed 0, and two tasks on the N chunks of each window:

    middle     keep the first and last ``--context`` chunks, rewrite the ones between
    beginning  keep the last half of the chunks, write the first half

per seed, ``pipe.infill`` writes ``--variants`` variants of every window. Reported, mean and spread over seeds:

    gen. PPL        median perplexity of the whole window under the AR baseline (``bench-ar``, the judge of
                    ``bench.quality``) for: the infilled windows; the original windows (the bar to reach); and a
                    control where the same span is taken verbatim from another held-out window (a span that
                    reads as text but does not fit). An infill that fits its context scores between the two,
                    close to the original.
    diversity       ``bench.quality.diversity`` of the rewritten spans across the variants of one window,
                    averaged over windows (0: every variant the same).
    kept exact      share of kept tokens that came out as the window's own (1 by construction: a check).

Writes ``bench/results/infill.json``; ``python -m bench.report`` puts it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch

from bench.quality import DATA, JUDGE, diversity, held_out_windows, load_model, read_texts, spread
from cosmos import CosmosPipeline
from cosmos.checkpoint import DEFAULT_CHECKPOINT, CheckpointError
from cosmos.encoder import EncoderLoadError

OUT = Path("bench/results/infill.json")


def task_keeps(num_latents: int, context: int) -> dict[str, list[int]]:
    """The kept chunks of each task."""
    half = num_latents // 2
    return {"middle": [*range(context), *range(num_latents - context, num_latents)],
            "beginning": list(range(half, num_latents))}


def spliced(pipe: CosmosPipeline, window: str, donor: str, rewritten: list[int]) -> str:
    """``window`` with the tokens of its ``rewritten`` chunks taken from ``donor`` at the same positions."""
    ids = pipe.tokenize([window, donor]).input_ids                           # (2, L)
    r = pipe.max_length // pipe.latent_shape[0]
    positions = torch.zeros(pipe.max_length, dtype=torch.bool)
    for i in rewritten:
        positions[i * r:(i + 1) * r] = True
    return pipe.ids_to_texts(torch.where(positions, ids[1], ids[0])[None])[0]


def rewritten_span(pipe: CosmosPipeline, token_ids: torch.Tensor, rewritten: list[int]) -> str:
    """The text of the rewritten chunks' tokens of one decoded row (L,)."""
    r = pipe.max_length // pipe.latent_shape[0]
    keep = torch.tensor([j // r in rewritten for j in range(pipe.max_length)])
    ids = torch.where(keep, token_ids, torch.full_like(token_ids, pipe.tokenizer.pad_token_id))
    return pipe.ids_to_texts(ids[None])[0]


def evaluate(pipe: CosmosPipeline, judge, windows: list[str], *, variants: int, seeds: int, steps: int,
             context: int) -> dict:
    n = pipe.latent_shape[0]
    donors = windows[1:] + windows[:1]                                       # each window's span from the next
    result = {}
    for task, keep in task_keeps(n, context).items():
        rewritten = [i for i in range(n) if i not in keep]
        runs = {k: [] for k in ("gen_ppl", "diversity", "kept_exact", "seconds")}
        examples = []
        for seed in range(seeds):
            start = time.perf_counter()
            texts, spans, exact = [], [], []
            for w, window in enumerate(windows):
                out = pipe.infill(window, keep=keep, num=variants, steps=steps, seed=seed * 100_003 + w)
                texts += out.texts
                spans.append([rewritten_span(pipe, row, rewritten) for row in out.token_ids])
                original = pipe.tokenize([window]).input_ids[0]
                r = pipe.max_length // n
                kept_pos = torch.tensor([j // r in keep for j in range(pipe.max_length)])
                exact.append(float((out.token_ids[:, kept_pos] == original[kept_pos]).float().mean()))
                if seed == 0 and w < 3:
                    examples.append({"window": window, "variants": out.texts})
            runs["seconds"].append(time.perf_counter() - start)
            if judge is not None:
                runs["gen_ppl"].append(statistics.median(judge.perplexities([t or "." for t in texts])))
            runs["diversity"].append(statistics.mean(diversity(s) for s in spans))
            runs["kept_exact"].append(statistics.mean(exact))
        result[task] = {"kept": keep, "rewritten": rewritten, **{k: spread(v) for k, v in runs.items() if v},
                        "examples": examples}
        if judge is not None:
            result[task]["control_gen_ppl"] = statistics.median(judge.perplexities(
                [spliced(pipe, w, d, rewritten) for w, d in zip(windows, donors)]))
    if judge is not None:
        result["original_gen_ppl"] = statistics.median(judge.perplexities(windows))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default=DEFAULT_CHECKPOINT.relative_to(DEFAULT_CHECKPOINT.parents[1]).as_posix(),
                        help="a chunk-local pipeline folder (default: the embedded one)")
    parser.add_argument("--judge", default=JUDGE, help="AR model that scores perplexities (preset or folder)")
    parser.add_argument("--windows", type=int, default=64, help="held-out windows")
    parser.add_argument("--variants", type=int, default=4, help="variants per window")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--context", type=int, default=2, help="chunks kept at each end for 'middle'")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    pipe = CosmosPipeline.from_pretrained(args.pipeline)
    if not pipe.supports_infill:
        raise SystemExit(f"error: {args.pipeline} cannot infill (it needs a chunk-local autoencoder and a denoiser)")
    try:
        judge = load_model(args.judge)[1]
    except (CheckpointError, EncoderLoadError) as err:      # without it: no gen. PPL, the rest is measured
        print(f"note: no AR judge ({err}); gen. PPL is skipped")
        judge = None
    all_windows = held_out_windows(read_texts(DATA / "test.jsonl"), pipe.tokenizer, pipe.max_length)
    full = [w for w in all_windows if int(pipe.tokenize([w]).attention_mask.sum()) == pipe.max_length]
    windows = random.Random(0).sample(full, min(args.windows, len(full)))   # whole windows: every chunk is text
    started = time.perf_counter()
    result = evaluate(pipe, judge, windows, variants=args.variants, seeds=args.seeds, steps=args.steps,
                      context=args.context)
    report = {"pipeline": args.pipeline, "judge": args.judge if judge is not None else None,
              "settings": {"windows": len(windows), "variants": args.variants, "seeds": args.seeds,
                           "steps": args.steps, "context": args.context, "sampler": pipe.sampling.sampler,
                           "torch_threads": torch.get_num_threads()},
              "minutes": round((time.perf_counter() - started) / 60, 2), **result}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if judge is not None:
        print(f"original windows: gen. PPL {result['original_gen_ppl']:.1f}")
    for task in ("middle", "beginning"):
        row = result[task]
        ppl = (f"gen. PPL {row['gen_ppl']['mean']:.1f} ± {row['gen_ppl']['std']:.1f} (control "
               f"{row['control_gen_ppl']:.1f}), " if judge is not None else "")
        print(f"{task:>9}: {ppl}diversity {row['diversity']['mean']:.3f}, kept exact {row['kept_exact']['mean']:.3f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
