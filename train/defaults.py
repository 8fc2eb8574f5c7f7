"""Set a pipeline folder's sampling defaults (what ``generate`` and the playground use) and refresh its card.

    python -m train.defaults assets/cosmos-cpu-small --sampler sde --steps 25 --final-x0 true

Pick the values with ``python -m bench.steps --pipeline FOLDER`` (its fastest setting whose quality matches
the paper's 200-step SDE). Only ``model_index.json``'s ``sampling`` section changes; the weights are not
touched. When the folder has a model card (``card.json``), its "schedule / sampler" line and its seeded
samples are remade with the new defaults (the card says its samples are ``pipe.generate(1, seed=SEED)``
with the defaults), and README.md is rendered again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from cosmos import SAMPLERS, TIME_GRIDS, CheckpointError, CosmosPipeline
from cosmos.card import CardError, ModelCard
from cosmos.config import ConfigError, SamplingConfig, config_from_dict
from cosmos.pipeline_folder import INDEX

from .export import card_samples, sampler_property, write_card


def set_defaults(folder: str | Path, **changes) -> SamplingConfig:
    """Rewrite ``folder``'s sampling defaults with ``changes`` (sampler, steps, time_grid, ...); refresh its card."""
    folder = Path(folder)
    index_path = folder / INDEX
    index = json.loads(index_path.read_text(encoding="utf-8"))
    sampling = config_from_dict(SamplingConfig, {**index.get("sampling", {}), **changes}, where=f"{index_path} sampling")
    written = {k: v for k, v in dataclasses.asdict(sampling).items() if k in index.get("sampling", {}) or k in changes}
    index["sampling"] = written
    pipe = CosmosPipeline.from_pretrained(folder)          # loads before anything is written: a bad folder stops here
    index_path.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    pipe.sampling = sampling
    card = ModelCard.load(folder)
    if card is not None:
        card = dataclasses.replace(card, properties={**card.properties, "schedule / sampler": sampler_property(pipe)},
                                   samples=card_samples(pipe))
        write_card(folder, card)
    return sampling


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a pipeline folder (model_index.json)")
    parser.add_argument("--sampler", choices=list(SAMPLERS))
    parser.add_argument("--steps", type=int)
    parser.add_argument("--time-grid", choices=list(TIME_GRIDS))
    parser.add_argument("--final-x0", choices=["true", "false"],
                        help="end on the last step's x0 estimate (true) or on the state at t_end (false, the paper)")
    parser.add_argument("--self-condition", choices=["true", "false"],
                        help="feed each step's x0 estimate back to the denoiser (true, the paper) or zeros (false)")
    args = parser.parse_args(argv)
    flags = (("final_x0", args.final_x0), ("self_condition", args.self_condition))
    changes = {k: v for k, v in (("sampler", args.sampler), ("steps", args.steps), ("time_grid", args.time_grid),
                                 *((name, None if flag is None else flag == "true") for name, flag in flags))
               if v is not None}
    if not changes:
        parser.error("nothing to set: pass --sampler, --steps, --time-grid, --final-x0 and/or --self-condition")
    try:
        sampling = set_defaults(args.folder, **changes)
    except (OSError, json.JSONDecodeError, ConfigError, CheckpointError, CardError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{args.folder}: sampler {sampling.sampler}, {sampling.steps} steps, {sampling.time_grid} grid, "
          f"ends on {'the x0 estimate' if sampling.final_x0 else 'the state at t_end'}"
          + ("" if sampling.self_condition else ", no self-conditioning"))


if __name__ == "__main__":
    main()
