"""Build the latent map the app draws: a fixed-seed UMAP of reference latents, stored in the pipeline folder.

    python -m train.latent_map --pipeline assets/cosmos-cpu-small

Reference set: public-domain prose passages (held-out test split, cut to the model's L tokens) and
samples the pipeline itself generates, so nothing from a licensed corpus is stored. Writes
``<pipeline>/latent_map/`` (see ``cosmos.projection``); the app loads it and starts with the map drawn.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from cosmos import CheckpointError, CosmosPipeline
from cosmos.encoder import EncoderLoadError
from cosmos.projection import LatentMap, UmapSettings, evenly_spaced

DEFAULT_TEXTS = "../shared/data/public-domain-prose/test.jsonl"
SOURCE_LABELS = {"moby-dick": "prose: Moby-Dick", "sotu": "prose: State of the Union"}
SAMPLE_LABEL = "model sample"


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?;])\s+", text.strip(), maxsplit=1)[0]


def read_reference(path: str | Path, per_group: int) -> list[tuple[str, str]]:
    """(text, group label) pairs from a JSONL file of {"text", "source"} records: up to ``per_group``
    per source family (the part of ``source`` before ':'), evenly spaced through the file. Every
    other passage is cut to its first sentence, so the map also covers short texts like users type."""
    groups: dict[str, list[str]] = defaultdict(list)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                family = str(record.get("source", "text")).split(":")[0]
                groups[SOURCE_LABELS.get(family, f"prose: {family}")].append(record["text"])
    picked = []
    for label, texts in sorted(groups.items()):
        picked += [(first_sentence(texts[i]) if k % 2 else texts[i], label)
                   for k, i in enumerate(evenly_spaced(len(texts), per_group))]
    return picked


def cut_to_length(pipe: CosmosPipeline, text: str) -> str:
    """The part of ``text`` the model reads (its first L - 2 tokens), in the original casing."""
    enc = pipe.encoder.tokenizer(text, truncation=True, max_length=pipe.max_length, return_offsets_mapping=True)
    ends = [end for start, end in enc["offset_mapping"] if end > start]
    if not ends or ends[-1] >= len(text.rstrip()):
        return text
    return text[: ends[-1]].rstrip() + " …"


def build_latent_map(pipe: CosmosPipeline, reference: list[tuple[str, str]], num_samples: int, seed: int = 0,
                     settings: UmapSettings = UmapSettings()) -> LatentMap:
    texts = [cut_to_length(pipe, text) for text, _ in reference]
    sources = [label for _, label in reference]
    latents = [pipe.encode([t.removesuffix(" …") for t in texts])]             # (M, N, d)
    if num_samples and pipe.denoiser is not None:
        samples = pipe.generate(num_samples, seed=seed)
        texts += samples.texts
        sources += [SAMPLE_LABEL] * num_samples
        latents.append(samples.latents)
    return LatentMap.fit(torch.cat(latents), texts, sources, settings, pipe.fingerprint)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="pipeline folder to add latent_map/ to")
    parser.add_argument("--texts", default=DEFAULT_TEXTS, help="JSONL of {text, source} reference passages")
    parser.add_argument("--per-source", type=int, default=300, help="reference passages per source family")
    parser.add_argument("--samples", type=int, default=200, help="generated samples added to the map")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples and of UMAP")
    args = parser.parse_args(argv)
    try:
        start = time.perf_counter()
        pipe = CosmosPipeline.from_pretrained(args.pipeline)
        if not Path(args.texts).is_file():
            raise CheckpointError(f"reference texts {args.texts} not found (give --texts FILE.jsonl)")
        lmap = build_latent_map(pipe, read_reference(args.texts, args.per_source), args.samples, args.seed,
                                UmapSettings(random_state=args.seed))
        folder = lmap.save(args.pipeline)
    except (CheckpointError, EncoderLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    counts = {s: lmap.sources.count(s) for s in sorted(set(lmap.sources))}
    print(f"latent map of {len(lmap.texts)} points {counts} written to {folder} "
          f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
