"""Quality of a Cosmos pipeline on held-out TinyStories (paper Sec. 6 metrics, our own setting).

    python -m bench.quality                                  # the embedded checkpoint
    python -m bench.quality --pipeline DIR --samples 300 --seeds 3

Metrics (each over ``--seeds`` seeds of ``--samples`` unconditional samples; mean and spread):

    MAUVE          generated vs held-out reference texts (``mauve-text``), features = the frozen
                   encoder's mean-pooled last hidden states (offline; the paper uses gpt2-large)
    diversity      product over n = 2, 3, 4 of unique / total word n-grams (paper Sec. 6)
    memorization   share of generated word 4-grams that occur in the training texts
    reconstruction held-out token accuracy of encode -> decode (the first L tokens of each test text)
    robustness     reconstruction accuracy after adding Gaussian noise of std s x (latent std) to latents

Reference texts are the test split cut to what the model reads (its first L tokens, detokenised the
same way as samples), so length and casing do not decide MAUVE. Baselines (an AR LM, diffusion
without compression, other compression ratios, a CE-only autoencoder) are not trained yet; this
module measures what exists. Writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from cosmos import CosmosPipeline

DATA = Path("../shared/data/tinystories")
NOISE_LEVELS = (0.0, 0.1, 0.25, 0.5, 1.0)


def words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def diversity(texts: list[str]) -> float:
    """Product over n = 2, 3, 4 of (unique n-grams / total n-grams) across all texts."""
    value = 1.0
    for n in (2, 3, 4):
        grams = [g for t in texts for g in ngrams(words(t), n)]
        value *= len(set(grams)) / len(grams) if grams else 0.0
    return value


def memorization(texts: list[str], train_4grams: set[tuple[str, ...]]) -> float:
    """Share of generated 4-grams (with repeats) that occur in the training texts."""
    grams = [g for t in texts for g in ngrams(words(t), 4)]
    return sum(g in train_4grams for g in grams) / len(grams) if grams else 0.0


def read_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@torch.inference_mode()
def encoder_features(pipe: CosmosPipeline, texts: list[str], batch: int = 64) -> np.ndarray:
    """(K, D) mean-pooled frozen-encoder features, the MAUVE embedding."""
    out = []
    for start in range(0, len(texts), batch):
        tok = pipe.tokenize(texts[start:start + batch])
        ids, mask = tok.input_ids.to(pipe.device), tok.attention_mask.to(pipe.device)
        hidden = pipe.encoder(ids, mask)                                        # (B, L, D)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        out.append(pooled.float().cpu())
    return torch.cat(out).numpy()


def mauve_score(pipe: CosmosPipeline, generated: list[str], reference: list[str], seed: int) -> float:
    import mauve

    keep = [t for t in generated if t.strip()] or ["."]
    result = mauve.compute_mauve(p_features=encoder_features(pipe, reference), q_features=encoder_features(pipe, keep),
                                 seed=seed, verbose=False, num_buckets=max(2, min(len(keep), len(reference)) // 10))
    return float(result.mauve)


@torch.inference_mode()
def reconstruction(pipe: CosmosPipeline, texts: list[str], noise: float = 0.0, seed: int = 0) -> float:
    """Token accuracy of decode(encode(text) + noise x latent std) over real tokens ([CLS]/[SEP] included)."""
    generator = torch.Generator().manual_seed(seed)
    correct = total = 0
    for start in range(0, len(texts), 64):
        tok = pipe.tokenize(texts[start:start + 64])
        z = pipe.encode(texts[start:start + 64])                                # (B, N, d)
        if noise:
            scale = z.std(dim=(0, 1), keepdim=True) if z.shape[0] > 1 else z.std()
            z = z + noise * scale * torch.randn(z.shape, generator=generator).to(z.device)
        predicted = pipe.decode_token_ids(z).cpu()
        mask = tok.attention_mask.bool()
        correct += int(((predicted == tok.input_ids) & mask).sum())
        total += int(mask.sum())
    return correct / max(total, 1)


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0, "runs": [round(v, 4) for v in values]}


def evaluate(pipe: CosmosPipeline, samples: int, seeds: int, steps: int | None, test_texts: list[str],
             train_texts: list[str]) -> dict:
    # references: what the model reads of each test text (its first L tokens), detokenised like samples
    reference = pipe.ids_to_texts(pipe.tokenize(test_texts[:samples]).input_ids)
    train_4grams = {g for t in train_texts for g in ngrams(words(t), 4)}
    runs = {"mauve": [], "diversity": [], "memorization": [], "empty_share": [], "seconds": []}
    example = []
    for seed in range(seeds):
        start = time.perf_counter()
        texts = pipe.generate(samples, steps=steps, seed=seed).texts
        runs["seconds"].append(time.perf_counter() - start)
        runs["mauve"].append(mauve_score(pipe, texts, reference, seed))
        runs["diversity"].append(diversity(texts))
        runs["memorization"].append(memorization(texts, train_4grams))
        runs["empty_share"].append(sum(not t.strip() for t in texts) / len(texts))
        example = example or texts[:3]
    held_out = test_texts[: max(samples, 200)]
    return {"samples_per_seed": samples, "seeds": seeds, "steps": steps or pipe.sampling.steps,
            **{k: spread(v) for k, v in runs.items()},
            "reference": {"diversity": round(diversity(reference), 4),
                          "memorization": round(memorization(reference, train_4grams), 4)},
            "reconstruction_accuracy": round(reconstruction(pipe, held_out), 4),
            "robustness": {f"{s:g}": round(reconstruction(pipe, held_out, s), 4) for s in NOISE_LEVELS},
            "example_samples": example}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="assets/cosmos-cpu-small")
    parser.add_argument("--samples", type=int, default=200, help="samples per seed (and reference texts)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the pipeline's)")
    parser.add_argument("--data", default=str(DATA), help="folder with train.jsonl and test.jsonl")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/quality-<name>.json)")
    args = parser.parse_args(argv)
    pipe = CosmosPipeline.from_pretrained(args.pipeline)
    data = Path(args.data)
    result = {"pipeline": args.pipeline,
              **evaluate(pipe, args.samples, args.seeds, args.steps, read_texts(data / "test.jsonl"),
                         read_texts(data / "train.jsonl"))}
    out = Path(args.out or f"bench/results/quality-{Path(args.pipeline).name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for key in ("mauve", "diversity", "memorization", "empty_share"):
        print(f"{key:<14} {result[key]['mean']:.4f} ± {result[key]['std']:.4f}  (runs {result[key]['runs']})")
    print(f"{'reference':<14} diversity {result['reference']['diversity']}, memorization "
          f"{result['reference']['memorization']} (held-out human text, same length)")
    print(f"reconstruction {result['reconstruction_accuracy']}; robustness {result['robustness']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
