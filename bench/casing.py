"""How often restored casing matches the original (issue 27), on held-out reconstructions.

    python -m bench.casing                                   # the embedded default, TinyStories test split
    python -m bench.casing --pipeline assets/cosmos-story-cpu --max-windows 500

Held-out stories are cut into training-style windows (``cosmos.windows``, default stride) and each window
is compared word by word (a word is a run of letters, as in ``cosmos.casing``) with the story's original,
cased words. Three texts are scored per window:

    reconstruction   decode(encode(window)) as the pipeline returns it (its casing table applied)
    ceiling          the window's own ids detokenised by the pipeline: the table's casing of exact text
    lower            the window left in lower case (what an uncased encoder showed before)

A word counts where the reconstruction spelt it right (lower-cased, aligned with ``difflib``), so casing
is judged apart from reconstruction errors; ceiling and lower are also given on those same words and on
all words. Window-initial words are reported apart too: windows start anywhere in a story, while the
table capitalises a text's first word. Writes ``bench/results/casing.json``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import time
import unicodedata
import warnings
from pathlib import Path

import torch

from cosmos import CheckpointError, CosmosPipeline, TextTruncatedWarning
from cosmos.casing import CASING_FILE, WORD
from cosmos.checkpoint import checkpoint_from_env
from cosmos.windows import windows_from_texts

DATA = Path("../shared/data/tinystories")
RESULTS = Path("bench/results/casing.json")


def plain(word: str) -> str:
    """A word as an uncased WordPiece tokenizer spells it: lower case, accents stripped."""
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")


def reference_words(window: list[str], story: list[str], story_plain: list[str]) -> list[str | None] | None:
    """The story's cased word at each of the window's word positions (None where the window's first or last
    word is a piece of a word); None when the window cannot be placed in the story."""
    n = len(window)
    if n < 3:
        return None
    inner = window[1:n - 1]
    for k in range(len(story_plain) - n + 1):
        if story_plain[k + 1:k + n - 1] == inner:
            return [story[k + i] if 0 < i < n - 1 or story_plain[k + i] == window[i] else None for i in range(n)]
    return None


class Tally:
    def __init__(self):
        self.match, self.total = 0, 0

    def add(self, ok: bool) -> None:
        self.match += ok
        self.total += 1

    def share(self) -> dict:
        return {"match": round(self.match / self.total, 4) if self.total else None, "words": self.total}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default=None, help="pipeline folder (default: $COSMOS_CHECKPOINT or the "
                                                         "embedded checkpoint)")
    parser.add_argument("--data", default=str(DATA), help="folder with test.jsonl (one {\"text\": ...} per line)")
    parser.add_argument("--max-windows", type=int, default=2000, help="windows scored (a seeded subset)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        pipe = CosmosPipeline.from_pretrained(checkpoint_from_env(args.pipeline))
    except CheckpointError as err:
        raise SystemExit(f"error: {err}") from None
    path = Path(args.data) / "test.jsonl"
    if not path.is_file():
        raise SystemExit(f"error: {path} does not exist")
    stories = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    items = []   # (window ids (L,), the window's words, the story's cased word at each position)
    unplaced = 0
    for story in stories:
        words = WORD.findall(story)
        words_plain = [plain(w) for w in words]
        for ids in windows_from_texts([story], pipe.tokenizer, pipe.max_length):
            window = WORD.findall(pipe.tokenizer.decode(ids, skip_special_tokens=True))
            ref = reference_words(window, words, words_plain)
            if ref is None:
                unplaced += 1
            else:
                items.append((ids, window, ref))
    items = random.Random(0).sample(items, min(args.max_windows, len(items)))

    start = time.perf_counter()
    tallies = {name: Tally() for name in ("reconstruction", "ceiling_same_words", "lower_same_words", "ceiling_all",
                                          "lower_all", "reconstruction_first_words", "ceiling_first_words",
                                          "capitalised_reconstructed", "capitalised_ceiling")}
    for b in range(0, len(items), 64):
        batch = items[b:b + 64]
        ids = torch.stack([i for i, _, _ in batch])                       # (B, L)
        ceiling = pipe.ids_to_texts(ids)
        lower = [pipe.tokenizer.decode(i, skip_special_tokens=True) for i in ids]
        with warnings.catch_warnings():      # a few re-tokenised windows run a token past L: cut, as in training
            warnings.simplefilter("ignore", TextTruncatedWarning)
            recon = pipe.decode(pipe.encode(lower))
        for (_, window, ref), exact, rebuilt in zip(batch, ceiling, recon):
            exact_words, rebuilt_words = WORD.findall(exact), WORD.findall(rebuilt)
            for i, truth in enumerate(ref):
                if truth is not None:
                    tallies["ceiling_all"].add(exact_words[i] == truth)
                    tallies["lower_all"].add(window[i] == truth)
                    if truth != truth.lower():
                        tallies["capitalised_ceiling"].add(exact_words[i] == truth)
            matcher = difflib.SequenceMatcher(None, window, [w.lower() for w in rebuilt_words], autojunk=False)
            for block in matcher.get_matching_blocks():
                for i, j in zip(range(block.a, block.a + block.size), range(block.b, block.b + block.size)):
                    truth = ref[i]
                    if truth is None:
                        continue
                    tallies["reconstruction"].add(rebuilt_words[j] == truth)
                    tallies["ceiling_same_words"].add(exact_words[i] == truth)
                    tallies["lower_same_words"].add(window[i] == truth)
                    if i == 0:
                        tallies["reconstruction_first_words"].add(rebuilt_words[j] == truth)
                        tallies["ceiling_first_words"].add(exact_words[i] == truth)
                    if truth != truth.lower():
                        tallies["capitalised_reconstructed"].add(rebuilt_words[j] == truth)
    folder = Path(os.path.relpath(pipe.folder)) if pipe.folder is not None else None
    result = {"settings": {"pipeline": str(folder), "data": str(path), "windows": len(items),
                           "windows_not_placed": unplaced, "window_tokens": pipe.max_length,
                           "casing_table": pipe.folder is not None and (pipe.folder / CASING_FILE).is_file(),
                           "seconds": round(time.perf_counter() - start, 1)},
              **{name: t.share() for name, t in tallies.items()}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
