"""Usual casing for the text of an uncased tokenizer (issue 27): a table measured on the training corpus.

An uncased frozen encoder (the offline default, all-MiniLM-L6-v2) lower-cases every text before it
tokenises, so decoded ids spell lower-case text. The method has no casing step (the paper's encoder,
bert-base-cased, keeps case in its vocabulary); this is presentation only, applied where ids become text
(:class:`cosmos.detokenize.Detokenizer`). The casing is data, stored with the checkpoint as ``casing.json``:

    words             lower-cased word -> its most frequent written form in the corpus, counted only where
                      the word cannot be capitalised for starting a sentence (after a space, comma or
                      semicolon), kept only when that form is not the lower-case one ("lily" -> "Lily",
                      "i" -> "I", "tv" -> "TV")
    gaps              the punctuation between two words (spaces removed; a leading "^" marks the start of a
                      text) -> whether the corpus mostly writes the next word with a capital it would not
                      otherwise have there: true for "." "!" "?" ",“" "^" ..., false for "" "," ",”" ...
                      (a straight double quote is read as “ or ” by how many came before it in the text)

:func:`build_casing` measures both on texts; :meth:`CasingTable.restore` applies them. A word is one run
of letters, so "i'm" is the words "i" and "m" and becomes "I'm". Only all-lower-case words are changed,
and only their letters' case: restored text has the same length, characters and spacing as its input.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .checkpoint import CheckpointError

CASING_FILE = "casing.json"
FORMAT = "cosmos-casing"
VERSION = 1
START = "^"                               # marks the start of a text in a gap key
WORD = re.compile(r"[^\W\d_]+")           # a run of letters
NOT_A_START = re.compile(r"[,;]?")        # gaps after which a word is never capitalised for starting a sentence
REBUILD = "rebuild it with `python -m train.casing --config PRESET --out FOLDER`, or delete it to show lower-case text"


def lowercases(tokenizer) -> bool:
    """Whether ``tokenizer`` lower-cases its input (an uncased WordPiece tokenizer): only then is casing restored."""
    flag = getattr(tokenizer, "do_lower_case", None)
    if flag is None:
        flag = getattr(tokenizer, "init_kwargs", {}).get("do_lower_case", False)
    return bool(flag)


def _words(text: str) -> Iterator[tuple[re.Match, str]]:
    """Each word of ``text`` with the gap before it: the characters since the previous word, spaces removed,
    prefixed with ``START`` for the first word. A straight double quote reads as opening (“) or closing (”) by
    how many came before it in the text, so that '"Hi," said Tom' and 'Tom said, "Hi' differ."""
    quotes = iter(range(text.count('"')))
    marked = re.sub('"', lambda _: "“" if next(quotes) % 2 == 0 else "”", text)     # same length as text
    end = None
    for match in WORD.finditer(text):
        gap = "".join(marked[0 if end is None else end:match.start()].split())
        yield match, (START + gap if end is None else gap)
        end = match.end()


def _capitalised(word: str) -> str:
    """``word`` with its first letter upper-case (unchanged where that would change its length)."""
    first = word[:1].upper()
    return first + word[1:] if len(first) == 1 else word


@dataclass(frozen=True)
class CasingTable:
    """Lower-case word -> usual form, and the gaps after which a word is capitalised (module docstring)."""

    words: dict[str, str] = field(default_factory=dict)
    gaps: dict[str, bool] = field(default_factory=dict)
    source: dict = field(default_factory=dict)     # what it was measured on (corpus files, counts): for people

    def _starts_sentence(self, gap: str) -> bool:
        """Whether ``gap`` capitalises the next word. An unseen gap backs off to its endings ('^..' -> '..' -> '.'),
        and one with nothing seen does not capitalise."""
        for k in range(len(gap)):
            if gap[k:] in self.gaps:
                return self.gaps[gap[k:]]
        return False

    def restore(self, text: str) -> str:
        """``text`` (lower case) in its usual casing: words by the table, sentence starts capitalised."""
        out, last = [], 0
        for match, gap in _words(text):
            word = match.group()
            if word != word.lower():
                continue                              # already cased (e.g. "[UNK]"): left as it is
            cased = self.words.get(word, word)
            if self._starts_sentence(gap):
                cased = _capitalised(cased)
            out += [text[last:match.start()], cased]
            last = match.end()
        return "".join(out) + text[last:]

    # --- casing.json ---------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "source": self.source,
                "gaps": dict(sorted(self.gaps.items())), "words": dict(sorted(self.words.items()))}

    @classmethod
    def from_json(cls, value, where: str = CASING_FILE) -> "CasingTable":
        """A table from ``casing.json``'s content; raises CheckpointError naming what is wrong."""
        def bad(what: str) -> CheckpointError:
            return CheckpointError(f"{where}: {what}; {REBUILD}")

        if not isinstance(value, dict) or value.get("format") != FORMAT:
            raise bad(f"not a casing table (expected a JSON object with \"format\": \"{FORMAT}\")")
        if value.get("version") != VERSION:
            raise bad(f"casing table version {value.get('version')!r}; this version of cosmos reads {VERSION}")
        words, gaps, source = value.get("words"), value.get("gaps"), value.get("source", {})
        if not isinstance(words, dict):
            raise bad("\"words\" must be an object mapping lower-case words to their cased forms")
        for key, form in words.items():
            if not (isinstance(form, str) and WORD.fullmatch(key) and key == key.lower() and form.lower() == key
                    and len(form) == len(key)):
                raise bad(f"\"words\" maps {key!r} to {form!r}: keys must be lower-case words and values the "
                          "same word in other casing")
        if not isinstance(gaps, dict) or not all(g == "".join(g.split()) and WORD.search(g) is None
                                                 and isinstance(c, bool) for g, c in gaps.items()):
            raise bad("\"gaps\" must map punctuation strings (no letters, no spaces) to true or false")
        if not isinstance(source, dict):
            raise bad("\"source\" must be an object")
        return cls(dict(words), dict(gaps), source)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CASING_FILE
        path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "CasingTable | None":
        """``folder``'s ``casing.json``; None when there is none (older folders: text stays lower case)."""
        path = Path(folder) / CASING_FILE
        if not path.is_file():
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{path} is not valid JSON ({err}); the file is corrupt or truncated: "
                                  f"{REBUILD}") from err
        return cls.from_json(value, str(path))


def build_casing(texts: Iterable[str], min_count: int = 2, source: dict | None = None) -> CasingTable:
    """Measure a :class:`CasingTable` on cased ``texts`` (the training corpus, as written).

    A word's usual form is its most frequent form where no sentence can start (``NOT_A_START`` gaps), among
    words seen there at least ``min_count`` times. A gap capitalises when, among the words after it whose
    usual form is lower case, most are written with a capital there (gaps seen at least ``min_count`` times).
    """
    texts = list(texts)
    forms: dict[str, Counter] = defaultdict(Counter)
    for text in texts:
        for match, gap in _words(text):
            if not gap.startswith(START) and NOT_A_START.fullmatch(gap):
                forms[match.group().lower()][match.group()] += 1
    words = {}
    for key, counts in forms.items():
        form, _ = counts.most_common(1)[0]
        if form != key and sum(counts.values()) >= min_count and len(form) == len(key):
            words[key] = form
    seen, capitals = Counter(), Counter()
    for text in texts:
        for match, gap in _words(text):
            word = match.group()
            usual = words.get(word.lower(), word.lower())
            if usual[:1].islower():
                seen[gap] += 1
                capitals[gap] += word[:1].isupper()
    gaps = {g: capitals[g] * 2 > n for g, n in seen.items() if n >= min_count}
    counts = {"texts": len(texts), "words_counted": sum(sum(c.values()) for c in forms.values()),
              "min_count": min_count}
    return CasingTable(words, gaps, {**(source or {}), **counts})
