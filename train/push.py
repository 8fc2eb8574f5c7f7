"""Push a checkpoint folder to a Hugging Face model repo, in one command.

    python -m train.push my-cosmos --repo USER/my-cosmos --dry-run   # list what would be sent, with sizes
    python -m train.push my-cosmos --repo USER/my-cosmos             # create the repo if needed, upload

Then anyone loads it with ``CosmosPipeline.from_pretrained("USER/my-cosmos")`` (and the playground with
``python app.py --checkpoint USER/my-cosmos``). The folder is checked first: it must load as a pipeline
(the same validation ``from_pretrained`` does), and the Hub's limits hold. A folder with a ``card.json``
(``train.export`` writes one) gets its README.md re-rendered for the repo, so the card's load line names
the repo id; the card's YAML front matter carries the license, datasets, base encoder and its measured
accuracies. The token comes from ``--token``, ``$HF_TOKEN`` or ``hf auth login``.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a pipeline folder (python -m train.export writes one)")
    parser.add_argument("--repo", required=True, help="USER/NAME of the model repo")
    parser.add_argument("--token", help="Hugging Face write token (default: $HF_TOKEN or `hf auth login`)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--dry-run", action="store_true", help="list the files and check them; send nothing")
    args = parser.parse_args(argv)
    try:
        if not args.folder.is_dir():
            raise CheckpointError(f"{args.folder} is not a folder")
        CosmosPipeline.from_pretrained(args.folder)      # refuse what would not load for the people who pull it
        files = checkpoint_files(args.folder, args.repo)
    except (CheckpointError, ConfigError, EncoderLoadError, CardError) as err:
        print(f"error: {args.folder} is not a checkpoint to publish: {err}", file=sys.stderr)
        return 2
    if not any(f.path_in_repo == "README.md" for f in files):
        print("note: no model card (README.md); `python -m train.export` writes one", file=sys.stderr)
    return publish(files, lambda: upload(args.repo, "model", files, token=token_from(args.token), private=args.private,
                                         message=f"Upload {args.folder.name} (python -m train.push)"),
                   dry_run=args.dry_run, done=f"load it with CosmosPipeline.from_pretrained({args.repo!r})")


if __name__ == "__main__":
    sys.exit(main())
