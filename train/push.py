"""Push a checkpoint folder to a Hugging Face model repo, in one command.

    python -m train.push my-cosmos --repo USER/my-cosmos --dry-run   # list what would be sent, with sizes
    python -m train.push my-cosmos --repo USER/my-cosmos             # create the repo if needed, upload

Then anyone loads it with ``CosmosPipeline.from_pretrained("USER/my-cosmos")`` (and the playground with
``python app.py --checkpoint USER/my-cosmos``). The folder is checked first: it must load as a pipeline
(the same validation ``from_pretrained`` does), and the Hub's limits hold. A folder with a ``card.json``
(``train.export`` writes one) gets its README.md re-rendered for the repo, so the card's load line names
the repo id; the card's YAML front matter carries the license, datasets, base encoder and its measured
accuracies. The token comes from ``--token``, ``$HF_TOKEN`` or ``hf auth login``.

A folder of someone else's weights (its card's ``origin``, e.g. a release converted by ``python -m
train.convert_official``) is pushed to a private repo unless ``--public`` is given: the authors' files carry
no license, so making them public is not this command's call.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from cosmos import CheckpointError, ConfigError, CosmosPipeline, EncoderLoadError
from cosmos.card import CardError, ModelCard
from cosmos.hub import UploadFile, collect, publish, token_from, upload


def checkpoint_files(folder: Path, repo_id: str) -> list[UploadFile]:
    """The folder's files as the model repo receives them; README.md rendered from card.json for ``repo_id``."""
    files = collect(folder, sorted(p.name for p in folder.iterdir()))
    card = ModelCard.load(folder)
    if card is None:
        return files
    readme = dataclasses.replace(card, path=repo_id).to_markdown().encode("utf-8")
    return [f for f in files if f.path_in_repo != "README.md"] + [UploadFile("README.md", readme)]


def private_by_default(folder: Path) -> str | None:
    """Why ``folder``'s repo is private unless ``--public`` is given (weights trained elsewhere), or None."""
    card = ModelCard.load(folder)
    if card is None or card.origin is None:
        return None
    return (f"{folder} holds weights trained by others (origin {card.origin!r}) that carry no license from their "
            "authors, so the repo is created private; pass --public only if their authors allow redistribution")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a pipeline folder (python -m train.export writes one)")
    parser.add_argument("--repo", required=True, help="USER/NAME of the model repo")
    parser.add_argument("--token", help="Hugging Face write token (default: $HF_TOKEN or `hf auth login`)")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument("--private", action="store_true", help="create the repo private (the default for a "
                            "folder of weights trained elsewhere, e.g. converted by train.convert_official)")
    visibility.add_argument("--public", action="store_true", help="create the repo public even for such a folder")
    parser.add_argument("--dry-run", action="store_true", help="list the files and check them; send nothing")
    args = parser.parse_args(argv)
    try:
        if not args.folder.is_dir():
            raise CheckpointError(f"{args.folder} is not a folder")
        CosmosPipeline.from_pretrained(args.folder)      # refuse what would not load for the people who pull it
        files = checkpoint_files(args.folder, args.repo)
        why_private = private_by_default(args.folder)
    except (CheckpointError, ConfigError, EncoderLoadError, CardError) as err:
        print(f"error: {args.folder} is not a checkpoint to publish: {err}", file=sys.stderr)
        return 2
    if not any(f.path_in_repo == "README.md" for f in files):
        print("note: no model card (README.md); `python -m train.export` writes one", file=sys.stderr)
    private = args.private or (why_private is not None and not args.public)
    if why_private is not None:
        print(f"note: {why_private}" if private else f"note: --public given for weights trained by others; "
              "make sure their authors allow it", file=sys.stderr)
    return publish(files, lambda: upload(args.repo, "model", files, token=token_from(args.token), private=private,
                                         message=f"Upload {args.folder.name} (python -m train.push)"),
                   dry_run=args.dry_run, done=f"load it with CosmosPipeline.from_pretrained({args.repo!r})")


if __name__ == "__main__":
    sys.exit(main())
