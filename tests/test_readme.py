"""The README's "library in five minutes" runs as written (issue 7 asks for that), against the shipped assets."""

from __future__ import annotations

import re
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def library_snippet() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The library in five minutes"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_library_in_five_minutes_runs_as_written(tmp_path, monkeypatch):
    code = library_snippet()
    assert 'CosmosPipeline.from_pretrained("assets/cosmos-story-cpu")' in code    # the shipped prompt checkpoint
    (tmp_path / "assets").symlink_to(REPO / "assets")            # relative paths as from the repository root;
    monkeypatch.chdir(tmp_path)                                  # what it saves lands in tmp_path
    torch.manual_seed(0)
    scope: dict = {"print": lambda *args: None}
    exec(compile(code, "README.md (library in five minutes)", "exec"), scope)
    assert scope["z"].shape == (1, 8, 384) and len(scope["texts"]) == 1
    assert len(scope["out"].texts) == 4 and len(scope["path"].texts) == 8 and len(scope["edits"].texts) == 4
    assert scope["story_pipe"].supports_prompts and len(scope["story"].texts) == 3 and len(scope["pair"].texts) == 2
    assert (tmp_path / "my-cosmos" / "model_index.json").is_file() and scope["pipe"] is not None
    kept = scope["default"].tokenize([scope["text"]]).input_ids[0, :16]       # the first two chunks, kept
    assert len(scope["more"].texts) == 4 and all(bool((row[:16] == kept).all()) for row in scope["more"].token_ids)
    assert scope["start"].kept == [4, 5, 6, 7] and len(scope["start"].texts) == 4
