"""Quality of the benchmark family on held-out TinyStories (paper Sec. 6 metrics, in our setting).

    python -m bench.quality                                   # every trained model + the embedded checkpoint
    python -m bench.quality --models bench-l8 bench-ar        # some of them
    python -m bench.quality --models assets/cosmos-cpu-small --samples 64 --seeds 2   # any pipeline folder

A model is a preset of ``bench.baselines`` (its trained pipeline / AR folder) or a pipeline folder.
Each is written to ``bench/results/quality/<name>.json``; ``python -m bench.report`` makes the tables.

Texts compared are windows of L tokens cut from whole stories exactly as training cuts them
(``cosmos.windows.windows_from_texts``, stride L/2), detokenised: what every model here learns to generate.
``--window-start sentence`` cuts them where sentences start instead, for models trained on such windows.
Per seed, ``--samples`` unconditional samples are drawn and compared with ``--samples`` held-out test
windows drawn with the same seed; mean and spread are over ``--seeds`` seeds.

    MAUVE          samples vs held-out windows (``mauve-text``). Features (``--mauve-features``): by
                   default gpt2-large's final hidden state at the last token (MAUVE's own featuriser, the
                   paper's) when gpt2-large loads without a download (a local folder or the Hugging Face
                   cache), else the frozen encoder's mean-pooled last hidden states; the JSON says which
    diversity      product over n = 2, 3, 4 of unique / total word n-grams (paper Sec. 6)
    memorization   share of generated word 4-grams that occur in the training stories
    repeats        ``adjacent_repeats``: share of adjacent word pairs that are one word twice; ``run_share``:
                   share of samples with a run of 4+ of one word (``cosmos.metrics.repetition``, issue 27)
    mid-text starts share of samples whose first word piece is punctuation or a word's tail ("##ed"):
                   samples that begin mid-sentence (``cosmos.metrics.mid_text_start_share``; Cosmos only)
    gen. PPL       median perplexity of the samples under the AR baseline (``bench-ar``); for the AR
                   row itself this is self-scored and only says how it samples its own distribution
    reconstruction held-out token accuracy of encode -> decode (Cosmos only)
    robustness     reconstruction accuracy after adding Gaussian noise of std s x (latent std)
    recon. PPL     median AR perplexity of the reconstructed held-out windows: the gen. PPL a denoiser
                   whose samples were real latents would reach through this decoder (Cosmos only)
    smoothness     interpolation: ``--pairs`` pairs of held-out windows, 9 points on the straight line
                   between their latents, each decoded; a point is well-formed when its AR perplexity
                   is at most the 90th percentile of the AR perplexity of held-out human windows.
                   Reported for the 7 interior points and, for comparison, the 2 reconstructed ends.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from cosmos import CosmosPipeline, FrozenEncoder
from cosmos.ar_lm import ArLanguageModel
from cosmos.card import read_metrics_log
from cosmos.metrics import mid_text_start_share, repetition, token_accuracy, words
from cosmos.checkpoint import CheckpointError
from cosmos.encoder import EncoderLoadError
from cosmos.encoder import TokenizedBatch
from cosmos.windows import WINDOW_STARTS, windows_from_texts

DATA = Path("../shared/data/tinystories")
RESULTS = Path("bench/results/quality")
NOISE_LEVELS = (0.0, 0.1, 0.25, 0.5, 1.0)
JUDGE = "bench-ar"                 # the AR baseline scores perplexities
MAUVE_LM = "gpt2-large"            # MAUVE's (and the paper's) featuriser, used whenever it loads offline
WELL_FORMED_PERCENTILE = 90


# --- text metrics --------------------------------------------------------------------------------------
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


def well_formed_share(perplexities: list[float], threshold: float) -> float:
    return sum(p <= threshold for p in perplexities) / len(perplexities) if perplexities else 0.0


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0, "runs": [round(v, 4) for v in values]}


# --- data ----------------------------------------------------------------------------------------------
def read_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def held_out_windows(texts: list[str], tokenizer, max_length: int, start: str = "any") -> list[str]:
    """Detokenised training-style windows (default stride) of held-out stories: what the models generate.
    ``start`` is where a window may begin (:data:`cosmos.windows.WINDOW_STARTS`)."""
    ids = windows_from_texts(texts, tokenizer, max_length, start=start)
    return [t for t in tokenizer.batch_decode(ids, skip_special_tokens=True) if t.strip()]


def seeded_subset(items: list[str], k: int, seed: int) -> list[str]:
    return random.Random(seed).sample(items, min(k, len(items)))


# --- MAUVE features --------------------------------------------------------------------------------------
@torch.inference_mode()
def encoder_token_features(encoder: FrozenEncoder, texts: list[str], max_length: int,
                           batch: int = 64) -> Iterator[tuple[TokenizedBatch, torch.Tensor]]:
    """Per batch of (up to) ``batch`` texts: their tokenisation at ``max_length`` and the frozen
    encoder's last hidden states (B, L, D)."""
    for start in range(0, len(texts), batch):
        tok = encoder.tokenize(texts[start:start + batch], max_length)
        yield tok, encoder(tok.input_ids, tok.attention_mask)


class EncoderFeatures:
    """MAUVE embedding from the frozen encoder: mean-pooled last hidden states, (K, D). Works offline."""

    def __init__(self, encoder: FrozenEncoder, max_length: int):
        self.encoder, self.max_length = encoder, max_length
        self.name = f"{encoder.name_or_path} (mean-pooled)"

    def __call__(self, texts: list[str], batch: int = 64) -> np.ndarray:
        out = []
        for tok, hidden in encoder_token_features(self.encoder, texts, self.max_length, batch):  # hidden (B, L, D)
            mask = tok.attention_mask[..., None].float()
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp_min(1)).float())
        return torch.cat(out).numpy()


class CausalLMFeatures:
    """MAUVE's own featurisation (Pillutla et al. 2021): a causal LM's final hidden state at each text's
    last token, (K, D); gpt2-large in the paper. Texts are cut at ``max_tokens`` LM tokens."""

    def __init__(self, name: str, local_files_only: bool, max_tokens: int = 1024):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)
        self.model = AutoModel.from_pretrained(name, local_files_only=local_files_only).eval()
        self.name, self.max_tokens = f"{name} (last token)", max_tokens

    @torch.inference_mode()
    def __call__(self, texts: list[str], batch: int = 16) -> np.ndarray:
        if self.tokenizer.pad_token is None:             # GPT-2 has none; padded positions are masked anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        out = []
        for start in range(0, len(texts), batch):
            chunk = [t or self.tokenizer.eos_token for t in texts[start:start + batch]]
            tok = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
            hidden = self.model(input_ids=tok.input_ids,
                                attention_mask=tok.attention_mask).last_hidden_state      # (B, T, D)
            last = tok.attention_mask.sum(1) - 1                                            # (B,) last real token
            out.append(hidden[torch.arange(len(chunk)), last].float())                     # (B, D)
        return torch.cat(out).numpy()


def mauve_featurizer(choice: str, encoder: FrozenEncoder, max_length: int):
    """``auto``: gpt2-large when it loads without a download, else the frozen encoder; ``encoder``: the
    frozen encoder; anything else: a causal LM folder or hub id (downloaded if the network allows)."""
    if choice == "encoder":
        return EncoderFeatures(encoder, max_length)
    if choice == "auto":
        try:
            return CausalLMFeatures(MAUVE_LM, local_files_only=True)
        except (OSError, ValueError):     # not in a local folder or the cache (ValueError: a bad hub id)
            return EncoderFeatures(encoder, max_length)
    return CausalLMFeatures(choice, local_files_only=False)


def mauve_score(featurize, generated: list[str], reference: list[str], seed: int) -> float:
    import mauve

    # Lower case on both sides: the held-out windows and the AR baseline's samples are detokenised without the
    # casing table (cosmos.casing), so only a pipeline's samples would carry case, and a cased featuriser
    # (gpt2-large) would score that difference rather than the text.
    keep = [t.lower() for t in generated if t.strip()] or ["."]
    reference = [t.lower() for t in reference]
    result = mauve.compute_mauve(p_features=featurize(reference), q_features=featurize(keep), seed=seed,
                                 verbose=False, num_buckets=max(2, min(len(keep), len(reference)) // 10))
    return float(result.mauve)


# --- Cosmos-only metrics -------------------------------------------------------------------------------
@torch.inference_mode()
def reconstruction(pipe: CosmosPipeline, texts: list[str], noise: float = 0.0, seed: int = 0,
                   decoded: list[str] | None = None) -> float:
    """Token accuracy of decode(encode(text) + noise x latent std) (:func:`cosmos.metrics.token_accuracy`);
    the decoded texts are appended to ``decoded`` when it is given."""
    generator = torch.Generator().manual_seed(seed)

    def batches():
        for start in range(0, len(texts), 64):
            tok = pipe.tokenize(texts[start:start + 64])
            z = pipe.encode(texts[start:start + 64])                                # (B, N, d)
            if noise:
                scale = z.std(dim=(0, 1), keepdim=True) if z.shape[0] > 1 else z.std()
                z = z + noise * scale * torch.randn(z.shape, generator=generator).to(z.device)
            ids = pipe.decode_token_ids(z).cpu()
            if decoded is not None:
                decoded.extend(pipe.ids_to_texts(ids))
            yield ids, tok.input_ids, tok.attention_mask.bool()

    return token_accuracy(batches())


def interpolation_paths(pipe: CosmosPipeline, windows: list[str], pairs: int, seed: int, points: int = 9
                        ) -> tuple[list[str], list[str]]:
    """Decoded (interior points, end points) of straight latent paths between random pairs of windows."""
    rng = random.Random(seed)
    interior, ends = [], []
    for _ in range(pairs):
        a, b = rng.sample(windows, 2)
        texts = pipe.interpolate(a, b, k=points, method="lerp").texts
        interior += texts[1:-1]
        ends += [texts[0], texts[-1]]
    return interior, ends


# --- the models ----------------------------------------------------------------------------------------
def load_model(name: str):
    """A preset of the benchmark family (-> its trained folder), a pipeline folder or an AR folder:
    (name, model)."""
    from bench.baselines import BY_PRESET, model_dir

    if name in BY_PRESET:
        folder = model_dir(name)
        if BY_PRESET[name].kind == "ar":
            return name, ArLanguageModel.from_pretrained(folder)
        return name, CosmosPipeline.from_pretrained(folder)
    if (Path(name) / "ar.json").is_file():
        return Path(name).name, ArLanguageModel.from_pretrained(name)
    return Path(name).name, CosmosPipeline.from_pretrained(name)


def training_summary(preset: str) -> dict:
    """Wall minutes and final held-out figures of a bench preset's training stages, from its metrics logs."""
    from train.config import load_config

    cfg = load_config(preset)
    summary = {}
    for stage, log in (("autoencoder", cfg.autoencoder_log), ("diffusion", cfg.diffusion_log), ("ar", cfg.ar_log)):
        records = read_metrics_log(log)
        if not records:
            continue
        evals = [r for r in records if r.get("event") == "eval"]
        steps = [r for r in records if "loss" in r and r.get("event") is None]
        summary[stage] = {"steps": steps[-1]["step"] if steps else 0,
                          "minutes": max(r.get("minutes", 0.0) for r in records),
                          "machine": next((r["machine"] for r in records if "machine" in r), None),
                          **{k: evals[-1][k] for k in ("val_accuracy", "val_loss", "ema_val_loss", "val_perplexity")
                             if evals and k in evals[-1]}}
    return summary


def sample(model, num: int, seed: int, steps: int | None) -> tuple[list[str], list[str] | None]:
    """``num`` samples' texts and, for Cosmos, each one's first word piece (None for the AR baseline)."""
    if isinstance(model, CosmosPipeline):
        out = model.generate(num, steps=steps, seed=seed)
        rows = model.ids_to_tokens(model.decode_token_ids(out.latents))
        return out.texts, [row[0][1] if row else "" for row in rows]
    return model.generate(num, seed=seed), None


def parameter_counts(model) -> dict:
    if isinstance(model, CosmosPipeline):
        count = model.summary().parameters
        return {"denoiser": count["denoiser"], "decoder_and_head": count["decoder"] + count["head"],
                "compressor": count["compressor"], "latents": list(model.latent_shape)}
    return {"lm": model.num_parameters()}


def evaluate(model, *, samples: int, seeds: int, steps: int | None, windows: list[str], train_texts: list[str],
             featurize, ar_judge, pairs: int, max_length: int) -> dict:
    train_4grams = {g for t in train_texts for g in ngrams(words(t), 4)}
    runs: dict[str, list[float]] = {k: [] for k in ("mauve", "diversity", "memorization", "empty_share",
                                                    "adjacent_repeats", "run_share", "mid_text_starts", "gen_ppl",
                                                    "seconds")}
    example: list[str] = []
    for seed in range(seeds):
        reference = seeded_subset(windows, samples, 1000 + seed)
        start = time.perf_counter()
        texts, first_pieces = sample(model, samples, seed, steps)
        runs["seconds"].append(time.perf_counter() - start)
        if first_pieces is not None:
            runs["mid_text_starts"].append(mid_text_start_share(first_pieces))
        runs["mauve"].append(mauve_score(featurize, texts, reference, seed))
        runs["diversity"].append(diversity(texts))
        runs["memorization"].append(memorization(texts, train_4grams))
        runs["empty_share"].append(sum(not t.strip() for t in texts) / len(texts))
        repeats = repetition(texts)
        runs["adjacent_repeats"].append(repeats["adjacent_repeats"])
        runs["run_share"].append(repeats["run_share"])
        if ar_judge is not None:
            runs["gen_ppl"].append(statistics.median(ar_judge.perplexities([t or "." for t in texts])))
        example = example or texts[:5]
    result = {"samples_per_seed": samples, "seeds": seeds, "params": parameter_counts(model),
              **{k: spread(v) for k, v in runs.items() if v}, "example_samples": example}
    if isinstance(model, CosmosPipeline):
        result["steps"] = steps or model.sampling.steps
        result["sampling"] = {"sampler": model.sampling.sampler, "steps": result["steps"],
                              "end": "x0" if model.sampling.final_x0 else f"state at t = {model.sampling.t_end:g}",
                              "self_condition": model.self_conditioned}
        held_out = seeded_subset(windows, max(samples, 256), 0)
        rebuilt: list[str] = []
        result["reconstruction_accuracy"] = round(reconstruction(model, held_out, decoded=rebuilt), 4)
        result["robustness"] = {f"{s:g}": round(reconstruction(model, held_out, s), 4) for s in NOISE_LEVELS}
        if ar_judge is not None:
            rebuilt_ppl = ar_judge.perplexities([t or "." for t in rebuilt])
            result["reconstruction_gen_ppl"] = round(statistics.median(rebuilt_ppl), 2)
            threshold = ar_judge_threshold(ar_judge, windows)
            interior, ends = interpolation_paths(model, windows, pairs, seed=0)
            result["interpolation"] = {
                "pairs": pairs, "points": 9, "threshold_ppl": round(threshold, 2),
                "interior_well_formed": round(well_formed_share(ar_judge.perplexities(interior), threshold), 4),
                "ends_well_formed": round(well_formed_share(ar_judge.perplexities(ends), threshold), 4),
                "example_path": interior[:7]}
    return result


def ar_judge_threshold(ar_judge, windows: list[str]) -> float:
    """The 90th percentile of the AR judge's perplexity over (up to 512) held-out human windows."""
    return float(np.percentile(ar_judge.perplexities(seeded_subset(windows, 512, 7)), WELL_FORMED_PERCENTILE))


def reference_row(windows: list[str], train_texts: list[str], samples: int, seeds: int, ar_judge) -> dict:
    """The same text metrics on held-out human windows (a second draw, disjoint seeds): the ceiling."""
    train_4grams = {g for t in train_texts for g in ngrams(words(t), 4)}
    draws = [seeded_subset(windows, samples, 2000 + s) for s in range(seeds)]
    row = {"samples_per_seed": samples, "seeds": seeds,
           "diversity": spread([diversity(d) for d in draws]),
           "memorization": spread([memorization(d, train_4grams) for d in draws]),
           **{k: spread([repetition(d)[k] for d in draws]) for k in ("adjacent_repeats", "run_share")}}
    if ar_judge is not None:
        row["gen_ppl"] = spread([statistics.median(ar_judge.perplexities(d)) for d in draws])
    return row


def main(argv: list[str] | None = None) -> None:
    from bench.baselines import BASELINES, model_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None,
                        help="bench presets or pipeline folders (default: every trained preset + the embedded one)")
    parser.add_argument("--samples", type=int, default=256, help="samples per seed (and reference windows)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None,
                        help="Cosmos sampler steps (default: each checkpoint's own setting, what the app samples with)")
    parser.add_argument("--pairs", type=int, default=24, help="interpolation pairs")
    parser.add_argument("--judge", default=JUDGE, help="AR model that scores perplexities (preset or folder)")
    parser.add_argument("--mauve-features", default="auto",
                        help=f"auto ({MAUVE_LM} if it loads offline, else the frozen encoder), encoder, or a causal "
                             "LM folder / hub id")
    parser.add_argument("--data", default=str(DATA), help="folder with train.jsonl and test.jsonl")
    parser.add_argument("--out", default=str(RESULTS), help="folder for <name>.json")
    parser.add_argument("--window-start", choices=WINDOW_STARTS, default="any",
                        help="where the held-out reference windows begin: anywhere (stride L/2) or where a "
                             "sentence starts, as a model trained on sentence-start windows writes (issue 27)")
    args = parser.parse_args(argv)
    names = args.models or [b.preset for b in BASELINES if (model_dir(b.preset) / "config.json").is_file()
                            or (model_dir(b.preset) / "model_index.json").is_file()] + ["assets/cosmos-cpu-small"]
    encoder = FrozenEncoder.from_pretrained()
    L = 64
    featurize = mauve_featurizer(args.mauve_features, encoder, L)
    print(f"MAUVE features: {featurize.name}", flush=True)
    try:
        ar_judge = load_model(args.judge)[1]
    except (CheckpointError, EncoderLoadError) as err:  # optional: without it, no gen. PPL and no smoothness
        print(f"note: no AR judge ({err}); gen. PPL and interpolation smoothness are skipped")
        ar_judge = None
    data = Path(args.data)
    windows = held_out_windows(read_texts(data / "test.jsonl"), encoder.tokenizer, L, args.window_start)
    train_texts = read_texts(data / "train.jsonl")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"samples": args.samples, "seeds": args.seeds, "steps": args.steps, "pairs": args.pairs,
                "held_out_windows": len(windows), "window_tokens": L, "window_start": args.window_start,
                "mauve_features": featurize.name, "torch_threads": torch.get_num_threads()}
    (out / "reference.json").write_text(json.dumps(
        {"settings": settings, **reference_row(windows, train_texts, args.samples, args.seeds, ar_judge)},
        indent=1) + "\n")
    for name in names:
        try:
            label, model = load_model(name)
        except (CheckpointError, EncoderLoadError) as err:
            raise SystemExit(f"error: {name}: {err}") from None
        if getattr(model, "max_length", L) != L:
            raise SystemExit(f"error: {name} reads {model.max_length} tokens; this benchmark compares L = {L}")
        started = time.perf_counter()
        result = evaluate(model, samples=args.samples, seeds=args.seeds, steps=args.steps, windows=windows,
                          train_texts=train_texts, featurize=featurize, ar_judge=ar_judge, pairs=args.pairs,
                          max_length=L)
        from bench.baselines import BY_PRESET
        result = {"model": name, "settings": settings, "minutes": round((time.perf_counter() - started) / 60, 2),
                  "training": training_summary(name) if name in BY_PRESET else None, **result}
        (out / f"{label}.json").write_text(json.dumps(result, indent=1) + "\n")
        summary = "  ".join(f"{k} {result[k]['mean']:.4f}±{result[k]['std']:.4f}"
                            for k in ("mauve", "diversity", "memorization", "gen_ppl") if k in result)
        print(f"{label}: {summary}  recon {result.get('reconstruction_accuracy', '-')}  "
              f"smooth {result.get('interpolation', {}).get('interior_well_formed', '-')}", flush=True)
    print(f"wrote {out}/")


if __name__ == "__main__":
    main()
