"""Publishing to the Hugging Face Hub: what a Space or a model repo receives, checked before anything is sent.

Two commands use it: ``python -m app.deploy`` (the playground to a Space) and ``python -m train.push`` (a
checkpoint folder to a model repo). Both first build the list of :class:`UploadFile` s (a dry run prints it
with sizes and stops), refuse what the Hub would refuse, then send everything in one commit with
``huggingface_hub`` (which moves large and binary files through LFS / Xet by itself). Without a network,
or with ``HF_HUB_OFFLINE=1``, they say so in one line (:class:`HubError`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MAX_FILE_BYTES = 50 * 1000**3      # the Hub's hard limit for one file
LFS_BYTES = 10 * 1024**2           # larger files are stored through LFS / Xet (so are binaries of any size)
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints"}   # never uploaded, wherever they appear
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".tmp"}
HTTP_CLIENTS = ("httpx", "httpcore", "requests", "urllib3")   # their errors mean "no network" here


class HubError(RuntimeError):
    """A publish that cannot go ahead; the message is one line that says why and what to do."""


@dataclass(frozen=True)
class UploadFile:
    path_in_repo: str                 # posix path inside the repo
    source: Path | bytes              # a local file, or content made for the upload (e.g. a re-rendered card)

    @property
    def size(self) -> int:
        return len(self.source) if isinstance(self.source, bytes) else self.source.stat().st_size


def collect(root: Path, paths: list[str], prefix: str = "") -> list[UploadFile]:
    """The files under ``paths`` (files or folders, relative to ``root``), in order, without caches; each
    lands at ``prefix`` + its path relative to ``root``. A missing path raises HubError."""
    files: list[UploadFile] = []
    for rel in paths:
        path = root / rel
        if not path.exists():
            raise HubError(f"{path} does not exist")
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in found:
            inner = file.relative_to(root)
            if SKIPPED_PARTS & set(inner.parts) or file.suffix in SKIPPED_SUFFIXES:
                continue
            files.append(UploadFile(prefix + inner.as_posix(), file))
    return files


def problems(files: list[UploadFile]) -> list[str]:
    """What the Hub would reject: files over its size limit, links, two files at one path."""
    found, seen = [], set()
    for f in files:
        if isinstance(f.source, Path) and f.source.is_symlink():
            found.append(f"{f.path_in_repo}: a symbolic link (the Hub stores files only)")
        if f.size > MAX_FILE_BYTES:
            found.append(f"{f.path_in_repo}: {f.size / 1000**3:.1f} GB is over the Hub's {MAX_FILE_BYTES // 1000**3} GB "
                         "limit per file (split it)")
        if f.path_in_repo in seen:
            found.append(f"{f.path_in_repo}: listed twice")
        seen.add(f.path_in_repo)
    return found


def listing(files: list[UploadFile]) -> str:
    """The files with their sizes and how the Hub will store them, and the total: a dry run's report."""
    rows = [f"{f.size / 1024**2:10.2f} MB  {'LFS ' if _is_lfs(f) else '    '} {f.path_in_repo}" for f in files]
    total = sum(f.size for f in files)
    return "\n".join(rows + [f"{total / 1024**2:10.2f} MB  total, {len(files)} files"])


def _is_lfs(f: UploadFile) -> bool:
    name = f.path_in_repo.rsplit("/", 1)[-1]
    return f.size > LFS_BYTES or name.endswith((".safetensors", ".bin", ".pt", ".npy", ".npz", ".png", ".jpg"))


def token_from(value: str | None) -> str:
    """The write token: ``--token``, else ``$HF_TOKEN``, else the one ``hf auth login`` stored."""
    from huggingface_hub import get_token

    token = value or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HubError("no Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login` "
                       "(a token with write access, https://huggingface.co/settings/tokens)")
    return token


def upload(repo_id: str, repo_type: str, files: list[UploadFile], *, token: str, message: str,
           private: bool = False, space_variables: dict[str, str] | None = None) -> str:
    """Create the repo if needed and commit ``files`` to it in one commit; returns the repo's URL.
    Network and permission failures become one-line HubErrors."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True,
                              space_sdk="gradio" if repo_type == "space" else None)
        operations = [CommitOperationAdd(f.path_in_repo, f.source) for f in files]
        api.create_commit(repo_id, operations, commit_message=message, repo_type=repo_type)
        for key, value in (space_variables or {}).items():
            api.add_space_variable(repo_id, key, value)
    except OfflineModeIsEnabled:
        raise HubError("HF_HUB_OFFLINE is set: nothing was uploaded (unset it on a machine with a network)") from None
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        raise HubError(f"the Hub refused the upload to {repo_id} (HTTP {status}): "
                       f"{str(err).splitlines()[0]}") from None
    except Exception as err:  # noqa: BLE001  no network: DNS, refused connections, timeouts
        if isinstance(err, OSError) or any(c.__module__.startswith(HTTP_CLIENTS) for c in type(err).__mro__):
            raise HubError(f"cannot reach the Hugging Face Hub ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else 'no answer'}): nothing was uploaded") from None
        raise
    return str(url)


def publish(files: list[UploadFile], send: Callable[[], str], *, dry_run: bool, done: str,
            more_problems: list[str] = ()) -> int:
    """The publish commands' common course, as an exit code: print the listing; refuse what would be
    rejected (1); stop on a dry run (0); else ``send()`` (a failure: 2) and print ``done`` after its URL (0)."""
    import sys

    print(listing(files))
    found = problems(files) + list(more_problems)
    if found:
        print("refused:\n" + "\n".join(f"  {line}" for line in found), file=sys.stderr)
        return 1
    if dry_run:
        print("dry run: nothing was sent")
        return 0
    try:
        url = send()
    except HubError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"uploaded to {url}: {done}")
    return 0
