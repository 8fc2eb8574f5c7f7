"""Prompt-conditioned Cosmos on held-out story continuation (issue 7): does a continuation follow its prompt?

    python -m bench.conditional --pipeline my-story-cosmos
    python -m bench.conditional --pipeline my-story-cosmos --prompts 128 --seeds 2 --steps 100 --scales 0 1 2 3

Pairs are made as the ``story-cpu`` preset trains on them (``cosmos.windows.split_after_sentences``,
split after the first sentence) from the test split of TinyStories: prompt = a story's first sentence,
reference = the rest. ``--prompts`` pairs are drawn once (seed 0); per seed and guidance scale the
pipeline writes one continuation per prompt (``generate(prompt=[...], guidance_scale=w, seed=s)``).
Mean and spread are over ``--seeds`` seeds.

    F1             BERTScore-style (Zhang et al. 2020), no idf: token features are the pipeline's own
                   frozen encoder's last hidden states; each token of the continuation is matched to its
                   most cosine-similar reference token (precision) and vice versa (recall); F1 per pair,
                   averaged. Texts are tokenised at the model's L tokens, so a reference is cut to the
                   first L tokens, the length the model was trained to continue with; [CLS], [SEP] and
                   padding are not scored; an empty continuation scores 0.
    F1 shuffled    the control: the same continuations against the references of other prompts (a fixed
                   derangement). F1 above it means continuations follow their own prompt; equal, that
                   they are generic stories whatever the prompt.
    diversity      ``bench.quality.diversity`` over the continuations (reference continuations, cut to L
                   tokens, in ``reference``)
    seconds        wall time of generating the continuations of one seed

Writes ``bench/results/conditional-<name>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from cosmos import CosmosPipeline, FrozenEncoder
from cosmos.windows import split_after_sentences

from .quality import DATA, diversity, encoder_token_features, spread

RESULTS = Path("bench/results")
SCALES = (0.0, 1.0, 2.0, 3.0)
PAIR_SEED = 0


# --- BERTScore-style F1 --------------------------------------------------------------------------------
def greedy_match_scores(cand: torch.Tensor, cand_mask: torch.Tensor, ref: torch.Tensor,
                        ref_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per pair: (precision, recall, F1), each (B,), of greedy cosine matching between token features.

    cand (B, Lc, D) with cand_mask (B, Lc), ref (B, Lr, D) with ref_mask (B, Lr); masks are True on
    tokens that count. Precision = mean over candidate tokens of their best cosine with a reference
    token, recall the other way round, F1 = 2PR / (P + R). A side without tokens scores 0.
    """
    cand = torch.nn.functional.normalize(cand.float(), dim=-1)
    ref = torch.nn.functional.normalize(ref.float(), dim=-1)
    sim = cand @ ref.transpose(1, 2)                                           # (B, Lc, Lr) cosines
    both = cand_mask[:, :, None] & ref_mask[:, None, :]
    sim = sim.masked_fill(~both, -2.0)                                         # below any cosine
    best_for_cand = sim.max(dim=2).values                                      # (B, Lc)
    best_for_ref = sim.max(dim=1).values                                       # (B, Lr)
    precision = _masked_mean(best_for_cand, cand_mask & ref_mask.any(1, keepdim=True))
    recall = _masked_mean(best_for_ref, ref_mask & cand_mask.any(1, keepdim=True))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12),
                     torch.zeros_like(precision))
    return precision, recall, f1


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum(1) / mask.sum(1).clamp_min(1)


def scored_tokens(encoder: FrozenEncoder, tok) -> torch.Tensor:
    """(B, L) True on a tokenised batch's real tokens other than [CLS] / [SEP] (padding is False already)."""
    ids = tok.input_ids
    special = (ids == encoder.tokenizer.cls_token_id) | (ids == encoder.tokenizer.sep_token_id)
    return tok.attention_mask & ~special


def bertscore(encoder: FrozenEncoder, candidates: list[str], references: list[str], max_length: int,
              batch: int = 64) -> dict[str, list[float]]:
    """Per pair (candidates[i], references[i]): precision, recall and F1 with the encoder's token features."""
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} references")
    out: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
    pairs = zip(encoder_token_features(encoder, candidates, max_length, batch),
                encoder_token_features(encoder, references, max_length, batch))
    for (cand_tok, cand), (ref_tok, ref) in pairs:
        scores = greedy_match_scores(cand, scored_tokens(encoder, cand_tok), ref, scored_tokens(encoder, ref_tok))
        for name, values in zip(("precision", "recall", "f1"), scores):
            out[name] += values.tolist()
    return out


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation of range(n) without fixed points (n >= 2): a random cycle through all items."""
    if n < 2:
        raise ValueError("the shuffled-prompt control needs at least 2 prompts")
    order = random.Random(seed).sample(range(n), n)
    follower = {order[k]: order[(k + 1) % n] for k in range(n)}
    return [follower[i] for i in range(n)]


# --- data and evaluation -------------------------------------------------------------------------------
def story_pairs(data: Path, count: int, seed: int = PAIR_SEED) -> list[tuple[str, str]]:
    """``count`` (first sentence, rest) pairs of the test split, drawn with ``seed``, as story-cpu makes them
    (``cosmos.windows.split_after_sentences``; pairs with an empty side are left out, as in training)."""
    from bench.quality import read_texts

    cut = (split_after_sentences(text, 1) for text in read_texts(data / "test.jsonl"))
    pairs = [(a, b) for a, b in cut if a and b]
    return random.Random(seed).sample(pairs, min(count, len(pairs)))


def evaluate(pipe: CosmosPipeline, pairs: list[tuple[str, str]], *, scales: list[float], seeds: int,
             steps: int | None) -> dict:
    """Every guidance scale over ``seeds`` seeds: F1, its shuffled-prompt control, diversity, seconds."""
    prompts, references = [p for p, _ in pairs], [r for _, r in pairs]
    L, encoder = pipe.max_length, FrozenEncoder.from_pretrained(pipe.summary().encoder)   # the scorer's own copy
    shuffled = [references[j] for j in derangement(len(references), PAIR_SEED)]
    rows = []
    for scale in scales:
        runs: dict[str, list[float]] = {k: [] for k in ("f1", "precision", "recall", "f1_shuffled", "f1_gap",
                                                        "diversity", "empty_share", "seconds")}
        examples: list[str] = []
        for seed in range(seeds):
            start = time.perf_counter()
            texts = pipe.generate(prompt=prompts, steps=steps, seed=seed, guidance_scale=scale).texts
            runs["seconds"].append(time.perf_counter() - start)
            own, other = bertscore(encoder, texts, references, L), bertscore(encoder, texts, shuffled, L)
            for name in ("f1", "precision", "recall"):
                runs[name].append(sum(own[name]) / len(texts))
            runs["f1_shuffled"].append(sum(other["f1"]) / len(texts))
            runs["f1_gap"].append(runs["f1"][-1] - runs["f1_shuffled"][-1])
            runs["diversity"].append(diversity(texts))
            runs["empty_share"].append(sum(not t.strip() for t in texts) / len(texts))
            examples = examples or texts[:3]
        rows.append({"guidance_scale": scale, **{k: spread(v) for k, v in runs.items()},
                     "example_continuations": examples})
    cut = encoder.tokenizer.batch_decode(encoder.tokenize(references, L).input_ids, skip_special_tokens=True)
    return {"scales": rows, "reference": {"diversity": round(diversity(cut), 4)}}


def table(result: dict) -> str:
    lines = [f"{'scale':>6}  {'F1':>15}  {'F1 shuffled':>15}  {'gap':>15}  {'diversity':>15}  {'seconds':>12}"]
    for row in result["scales"]:
        cells = [f"{row[k]['mean']:.4f} ± {row[k]['std']:.4f}" for k in ("f1", "f1_shuffled", "f1_gap", "diversity")]
        lines.append(f"{row['guidance_scale']:>6g}  " + "  ".join(f"{c:>15}" for c in cells)
                     + f"  {row['seconds']['mean']:>12.2f}")
    lines.append(f"reference continuations: diversity {result['reference']['diversity']:.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", required=True, help="a prompt-conditioned pipeline folder (or hub id)")
    parser.add_argument("--prompts", type=int, default=128, help="held-out (prompt, reference) pairs")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100, help="sampler steps")
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES), help="guidance scales w >= 0")
    parser.add_argument("--data", default=str(DATA), help="folder with test.jsonl (one {\"text\": ...} per line)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for conditional-<name>.json")
    args = parser.parse_args(argv)
    if args.prompts < 2 or args.seeds < 1 or args.steps < 1 or any(not w >= 0 for w in args.scales):
        parser.error("need --prompts >= 2, --seeds >= 1, --steps >= 1 and --scales >= 0")
    pipe = CosmosPipeline.from_pretrained(args.pipeline)
    if not pipe.supports_prompts:
        raise SystemExit(f"error: {args.pipeline} is unconditional (its denoiser takes no prompt); train and export "
                         "a prompt-conditioned one, e.g. the story-cpu preset")
    pairs = story_pairs(Path(args.data), args.prompts)
    if len(pairs) < 2:
        raise SystemExit(f"error: {args.data}/test.jsonl gave {len(pairs)} (first sentence, rest) pair(s); need 2")
    name = Path(args.pipeline).name
    started = time.perf_counter()
    result = evaluate(pipe, pairs, scales=args.scales, seeds=args.seeds, steps=args.steps)
    result = {"pipeline": args.pipeline, "settings": {
        "prompts": len(pairs), "seeds": args.seeds, "steps": args.steps, "scales": args.scales,
        "default_guidance_scale": pipe.sampling.guidance_scale, "max_length": pipe.max_length,
        "encoder": pipe.summary().encoder, "pair_seed": PAIR_SEED, "torch_threads": torch.get_num_threads()},
        "minutes": round((time.perf_counter() - started) / 60, 2), **result}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"conditional-{name}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{name}: {len(pairs)} held-out prompts x {args.seeds} seed(s), {args.steps} steps")
    print(table(result))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
