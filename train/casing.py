"""Measure a preset's casing table on its training corpus and store it with a pipeline folder (issue 27).

    python -m train.casing --config cpu-small --out assets/cosmos-cpu-small

The corpus is the diffusion stage's training split as written (cased): the text the pipeline generates
(``diffusion_stage.data``, or for a prompt-conditioned preset both sides of ``diffusion_stage.pairs``).
Writes ``<out>/casing.json`` (:mod:`cosmos.casing`); the weights are not touched. ``train.export`` writes
the same table into every folder it exports. An encoder whose tokenizer keeps case needs no table: then
nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cosmos import CheckpointError, EncoderLoadError, FrozenEncoder
from cosmos.casing import CasingTable, build_casing, lowercases
from cosmos.checkpoint import read_json
from cosmos.config import ConfigError
from cosmos.pipeline_folder import INDEX

from .config import TrainConfig, load_config
from .data import DataError, load_pair_texts, load_texts


def corpus_texts(cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """The diffusion stage's training texts, cased, and the files (or hub ids) they came from."""
    stage = cfg.diffusion_stage
    texts, names = [], []
    if stage.pairs is not None:
        split = stage.pairs.splits.get("train", "train")
        for source in stage.pairs.sources:
            texts += [side for pair in load_pair_texts(source, split) for side in pair]
            names.append((source.data_files or {}).get(split, source.path))
    else:
        split = stage.data.splits.get("train", "train")
        for source in stage.data.sources:
            texts += load_texts(source, split)
            names.append((source.data_files or {}).get(split, source.path))
    return texts, names


def casing_table(cfg: TrainConfig, min_count: int = 2) -> CasingTable:
    """The preset's casing table, measured on :func:`corpus_texts`."""
    texts, names = corpus_texts(cfg)
    return build_casing(texts, min_count, {"preset": cfg.preset, "corpus": names})


def write_casing(cfg: TrainConfig, folder: Path, tokenizer, min_count: int = 2) -> Path | None:
    """Write ``folder/casing.json`` for an uncased ``tokenizer``; None (nothing written) for a cased one."""
    if not lowercases(tokenizer):
        return None
    return casing_table(cfg, min_count).save(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="the pipeline folder to add casing.json to")
    parser.add_argument("--min-count", type=int, default=2, help="occurrences a word or gap needs to be kept")
    args = parser.parse_args(argv)
    if args.min_count < 1:
        parser.error("--min-count must be at least 1")
    out = Path(args.out)
    try:
        cfg = load_config(args.config, args.set)
        if not (out / INDEX).is_file():
            raise CheckpointError(f"{out} is not a pipeline folder (no {INDEX})")
        # only the encoder's name is read, so a folder whose casing.json is corrupt can be given a new one
        encoder = read_json(out / "autoencoder" / "config.json", "the autoencoder's config").get("encoder")
        if not isinstance(encoder, str):
            raise CheckpointError(f"{out / 'autoencoder' / 'config.json'} names no encoder")
        path = write_casing(cfg, out, FrozenEncoder.from_pretrained(encoder).tokenizer, args.min_count)
    except (ConfigError, DataError, CheckpointError, EncoderLoadError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if path is None:
        print(f"{out}: its encoder's tokenizer keeps case; no casing table needed, nothing written")
    else:
        table = CasingTable.load(out)
        print(f"wrote {path}: {len(table.words)} words, {sum(table.gaps.values())} of {len(table.gaps)} gaps "
              f"capitalise")


if __name__ == "__main__":
    main()
