"""Where reconstruction is lost: held-out token errors of encode -> decode, broken down (issue 27, item 1).

For each corpus' test windows (cut as training cuts them, :mod:`cosmos.windows`), every real token is
scored right or wrong (:func:`cosmos.metrics.token_accuracy`'s rule) and the accuracy is reported by
- frequency band: how often the token occurs in that corpus' training windows (0 = never: such a token is
  outside a restricted output head, so it can never be predicted);
- position inside its chunk (the r = L / N tokens latent i owns on a chunk-local checkpoint) and chunk index;
- kind: a word's continuation piece ("##..."), punctuation, one of the corpus' 100 most frequent words
  (function words), another word start; and whether the token's word straddles a chunk boundary.

    python -m bench.recon_errors --pipeline assets/cosmos-cpu-small --windows 1000

prints the tables and writes ``bench/results/recon-errors-<name>.json``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import torch

from cosmos import CosmosPipeline
from cosmos.windows import windows_from_texts

from .quality import read_texts

DATA = Path("../shared/data")
CORPORA = {"tinystories": DATA / "tinystories", "prose": DATA / "public-domain-prose"}
BANDS = ((0, 0), (1, 9), (10, 99), (100, 999), (1000, 10 ** 12))
RESULTS = Path(__file__).parent / "results"


def band_name(lo: int, hi: int) -> str:
    return "unseen" if hi == 0 else (f"{lo}+" if hi >= 10 ** 12 else f"{lo}-{hi}")


def token_kinds(tokens: list[str], frequent: set[str], chunk: int) -> list[tuple[str, bool]]:
    """(kind, straddles a chunk boundary) of each wordpiece of one window (position 0 = [CLS])."""
    word_of = []          # index of the word each piece belongs to
    for j, piece in enumerate(tokens):
        word_of.append(word_of[-1] if piece.startswith("##") and j else (word_of[-1] + 1 if j else 0))
    span: dict[int, set[int]] = defaultdict(set)
    for j, w in enumerate(word_of):
        span[w].add(j // chunk)
    out = []
    for j, piece in enumerate(tokens):
        if piece.startswith("##"):
            kind = "continuation"
        elif not any(c.isalnum() for c in piece):
            kind = "punctuation"
        elif piece in frequent:
            kind = "frequent word"
        else:
            kind = "other word start"
        out.append((kind, len(span[word_of[j]]) > 1))
    return out


@torch.inference_mode()
def breakdown(pipe: CosmosPipeline, test_texts: list[str], train_texts: list[str], windows: int) -> dict:
    tok = pipe.tokenizer
    L = pipe.max_length
    chunk = pipe.chunk_size or max(1, L // pipe.latent_shape[0])
    train_ids = windows_from_texts(train_texts, tok, L)
    counts = Counter(train_ids[train_ids != tok.pad_token_id].tolist())
    frequent = {tok.convert_ids_to_tokens(i) for i, _ in counts.most_common(120)
                if any(c.isalnum() for c in tok.convert_ids_to_tokens(i))}
    ids = windows_from_texts(test_texts, tok, L)[:windows]
    texts = [t for t in tok.batch_decode(ids, skip_special_tokens=True)]
    tally: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for start in range(0, len(texts), 64):
        batch = texts[start:start + 64]
        target = pipe.tokenize(batch).input_ids                                  # (B, L)
        predicted = pipe.decode_token_ids(pipe.encode(batch)).cpu()              # (B, L)
        for row_t, row_p in zip(target.tolist(), predicted.tolist()):
            real = [j for j, t in enumerate(row_t) if t != tok.pad_token_id]
            pieces = tok.convert_ids_to_tokens([row_t[j] for j in real])
            for j, (kind, straddles) in zip(real, token_kinds(pieces, frequent, chunk)):
                ok = int(row_p[j] == row_t[j])
                n = counts.get(row_t[j], 0)
                keys = {"all": "all", "position in chunk": str(j % chunk), "chunk": str(j // chunk),
                        "kind": kind, "word straddles a chunk boundary": str(straddles),
                        "frequency band": next(band_name(lo, hi) for lo, hi in BANDS if lo <= n <= hi)}
                for table, key in keys.items():
                    tally[table][key][0] += ok
                    tally[table][key][1] += 1
    total = tally["all"]["all"][1]
    return {table: {key: {"accuracy": round(c / n, 4), "share of tokens": round(n / total, 4),
                          "share of errors": round((n - c) / max(1, total - tally["all"]["all"][0]), 4)}
                    for key, (c, n) in sorted(rows.items())}
            for table, rows in tally.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default="assets/cosmos-cpu-small")
    parser.add_argument("--windows", type=int, default=1000, help="test windows per corpus")
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    args = parser.parse_args(argv)
    pipe = CosmosPipeline.from_pretrained(args.pipeline)
    result = {"pipeline": args.pipeline, "windows": args.windows, "corpora": {}}
    for name in args.corpora:
        test, train = read_texts(CORPORA[name] / "test.jsonl"), read_texts(CORPORA[name] / "train.jsonl")[:6000]
        result["corpora"][name] = tables = breakdown(pipe, test, train, args.windows)
        print(f"\n## {name}: accuracy {tables['all']['all']['accuracy']}")
        for table, rows in tables.items():
            if table == "all":
                continue
            print(f"  {table}: " + "; ".join(f"{k} {v['accuracy']:.3f} ({v['share of tokens']:.0%} of tokens, "
                                             f"{v['share of errors']:.0%} of errors)" for k, v in rows.items()))
    out = RESULTS / f"recon-errors-{Path(args.pipeline).name}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
