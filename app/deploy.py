"""Put the playground on a Hugging Face Space, in one command.

    python -m app.deploy --space USER/cosmos-playground --dry-run    # list what would be sent, with sizes
    python -m app.deploy --space USER/cosmos-playground              # create the Space if needed, upload
    python -m app.deploy --space USER/my-space --checkpoint my-cosmos   # ship another checkpoint as the default

The Space gets exactly what ``app.py`` needs: ``README.md`` (its front matter is the Space's config), the
license, ``.gitattributes``, ``requirements.txt``, ``app.py``, ``app/``, ``cosmos/`` and one checkpoint
folder (``assets/cosmos-cpu-small`` unless ``--checkpoint`` names another; that one is uploaded under
``assets/`` and made the Space's default through its ``COSMOS_CHECKPOINT`` variable). No training code,
tests, benchmarks or data. The token comes from ``--token``, ``$HF_TOKEN`` or ``hf auth login``; the Space
id from ``--space`` or ``$COSMOS_SPACE``. Before sending, the files are checked as the Hub would (sizes,
links) and the README's Space config against the files (sdk, app file, the gradio pin of requirements.txt).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from cosmos.checkpoint import CHECKPOINT_ENV, DEFAULT_CHECKPOINT
from cosmos.hub import HubError, UploadFile, collect, publish, token_from, upload

ROOT = DEFAULT_CHECKPOINT.parent.parent          # the repository root (what a Space's root mirrors)
SPACE_FILES = ["README.md", "LICENSE", ".gitattributes", "requirements.txt", "app.py", "app", "cosmos"]
SPACE_ENV = "COSMOS_SPACE"


def space_checkpoint(checkpoint: Path) -> tuple[list[UploadFile], str]:
    """The checkpoint folder's files as they land in the Space, and its path there."""
    checkpoint = checkpoint.resolve()
    if not (checkpoint / "model_index.json").is_file():
        raise HubError(f"{checkpoint} is not a pipeline folder (no model_index.json)")
    try:
        inside = checkpoint.relative_to(ROOT).as_posix()          # already in the repository: same path
        return collect(ROOT, [inside]), inside
    except ValueError:
        target = f"assets/{checkpoint.name}"
        return collect(checkpoint.parent, [checkpoint.name], prefix="assets/"), target


def space_files(checkpoint: Path = DEFAULT_CHECKPOINT) -> tuple[list[UploadFile], str]:
    """Everything the Space receives, and where its checkpoint lands."""
    files, target = space_checkpoint(checkpoint)
    return collect(ROOT, SPACE_FILES) + files, target


def space_config_problems(files: list[UploadFile]) -> list[str]:
    """What would stop the Space from building: the README's front matter against the files."""
    from huggingface_hub import SpaceCard

    by_path = {f.path_in_repo: f for f in files}
    if "README.md" not in by_path:
        return ["README.md is missing: its YAML front matter is the Space's configuration"]
    card = SpaceCard(Path(by_path["README.md"].source).read_text(encoding="utf-8"))
    found = []
    if card.data.get("sdk") != "gradio":
        found.append(f"README.md front matter: sdk must be 'gradio', got {card.data.get('sdk')!r}")
    if card.data.get("app_file") not in by_path:
        found.append(f"README.md front matter: app_file {card.data.get('app_file')!r} is not among the files")
    if not card.data.get("license"):
        found.append("README.md front matter: no license")
    pin = re.search(r"^gradio==(\S+)", Path(by_path["requirements.txt"].source).read_text(), flags=re.M) \
        if "requirements.txt" in by_path else None
    if pin is None:
        found.append("requirements.txt must pin gradio (gradio==X.Y.Z), the version the Space's sdk_version names")
    elif str(card.data.get("sdk_version")) != pin.group(1):
        found.append(f"README.md front matter: sdk_version {card.data.get('sdk_version')} differs from "
                     f"requirements.txt's gradio=={pin.group(1)}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default=os.environ.get(SPACE_ENV), help=f"USER/NAME (default: ${SPACE_ENV})")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help="pipeline folder the Space loads (default: the embedded assets/cosmos-cpu-small)")
    parser.add_argument("--token", help="Hugging Face write token (default: $HF_TOKEN or `hf auth login`)")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    parser.add_argument("--dry-run", action="store_true", help="list the files and check them; send nothing")
    args = parser.parse_args(argv)
    if not args.space and not args.dry_run:
        parser.error(f"give --space USER/NAME (or set ${SPACE_ENV})")
    try:
        files, target = space_files(args.checkpoint)
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    default = target == DEFAULT_CHECKPOINT.relative_to(ROOT).as_posix()
    print(f"the Space loads {target}" + ("" if default else f" (its {CHECKPOINT_ENV} variable)"))
    variables = None if default else {CHECKPOINT_ENV: target}
    return publish(files, lambda: upload(args.space, "space", files, token=token_from(args.token), private=args.private,
                                         space_variables=variables,
                                         message="Deploy the Cosmos playground (python -m app.deploy)"),
                   dry_run=args.dry_run, more_problems=space_config_problems(files),
                   done="the Space builds and starts in a few minutes")


if __name__ == "__main__":
    sys.exit(main())
