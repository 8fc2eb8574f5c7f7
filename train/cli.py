"""The command line every stage shares: ``--config PRESET_OR_PATH [--set key=value ...] [--restart]``.

Expected failures (bad config, missing data, broken checkpoint, encoder not found) print one clear
``error:`` line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from cosmos.checkpoint import CheckpointError
from cosmos.config import ConfigError
from cosmos.encoder import EncoderLoadError

from .config import TrainConfig, load_config
from .data import DataError


def run_cli(argv: list[str] | None, doc: str | None, stage: Callable[[TrainConfig, argparse.Namespace], object]) -> None:
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="preset name in train/configs/ (tiny, cpu-small, "
                        "paper-base) or a path to a TOML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. autoencoder_stage.optim.steps=50 (repeatable)")
    parser.add_argument("--restart", action="store_true", help="ignore a saved state and start from step 0")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    args = parser.parse_args(argv)
    try:
        stage(load_config(args.config, args.set), args)
    except (ConfigError, DataError, CheckpointError, EncoderLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
