"""Model cards as data: card.json round trip, clear errors for a damaged one, README.md rendered from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosmos.card import CARD_FILE, CardError, CurvePoint, DataSource, HeldOut, ModelCard, Sample, Stage, Target

REPO = Path(__file__).resolve().parent.parent
SHIPPED = [REPO / "assets" / "cosmos-cpu-small", REPO / "assets" / "cosmos-story-cpu"]


def make_card(evals: int = 3, prompted: bool = False) -> ModelCard:
    """A small made-up card: two stages with ``evals`` evaluations each, two samples."""
    ae_curve = [CurvePoint(10 * (i + 1), 0.5 * (i + 1), {"val_accuracy": 0.5 + 0.01 * i}) for i in range(evals)]
    dm_curve = [CurvePoint(20 * (i + 1), 0.25 * (i + 1), {"val_loss": 1.0, "ema_val_loss": 1.0 - 0.01 * i})
                for i in range(evals)]
    stages = [Stage("autoencoder", [DataSource("data/train.jsonl"), DataSource("prose.jsonl", "first 60 texts")], 30, 8,
                    1.52, 3e-3, "cosine", None, None, "val_accuracy", "Autoencoder accuracy", ae_curve),
              Stage("diffusion", [DataSource("data/train.jsonl")], 60, 8, 0.75, 1e-3, "constant", 0.999,
                    "runs/first/pipeline", "ema_val_loss", "Denoiser loss", dm_curve)]
    samples = [Sample(0, "a | b\nc", "Once upon a time." if prompted else None),
               Sample(1, "the end", "One day." if prompted else None)]
    return ModelCard(name="tiny-card", preset="tiny", path="out/tiny-card", properties={"denoiser": "2 blocks"},
                     licenses="Made up here.", stages=stages, machine="a test machine", optimizer="AdamW",
                     compression=4, reconstruction=[HeldOut("tinystories", 12, 0.9123), HeldOut("prose", 5, 0.5)],
                     target=Target("tinystories", 0.97), limitations="It is tiny. Expect noise.",
                     guidance_scale=1.5 if prompted else None, samples=samples, reproduce=["python -m train.x"],
                     measured_on="2026-01-02")


@pytest.mark.parametrize("prompted", [False, True])
def test_round_trip(tmp_path, prompted):
    card = make_card(prompted=prompted)
    path = card.save(tmp_path)
    assert path == tmp_path / CARD_FILE and json.loads(path.read_text())["schema"] == 1
    loaded = ModelCard.load(tmp_path)
    assert loaded == card and loaded.to_markdown() == card.to_markdown()
    text = card.to_markdown()
    for heading in ("# tiny-card\n", "## Data and licenses", "## Training", "## Held-out reconstruction accuracy (4x",
                    "## Reproduce", "Prompted samples" if prompted else "Unconditional samples"):
        assert heading in text
    assert "- Autoencoder: `data/train.jsonl`, `prose.jsonl` (first 60 texts)." in text
    assert "| autoencoder | 30 | 8 | 1.5 |" in text and "| 40 | 0.5 | 0.9900 |" in text
    assert "**Target** (>= 0.97 in-domain): missed by 0.058." in text
    assert "**Limitations.** It is tiny. Expect noise." in text
    assert "The diffusion stage started from the weights in `runs/first/pipeline`" in text
    assert "a &#124; b c" in text                            # a sample's '|' and newline do not break the table
    assert text.endswith("```\nMeasured on 2026-01-02.\n")


def test_a_missing_card_is_none(tmp_path):
    assert ModelCard.load(tmp_path) is None


def test_curve_tables_keep_twelve_evenly_spaced_rows_and_the_json_keeps_all(tmp_path):
    card = make_card(evals=30)
    table = card.training_markdown().split("Autoencoder accuracy:")[1].split("Denoiser loss:")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| step")]
    assert len(rows) == 12 and rows[0].startswith("| 10 |") and rows[-1].startswith("| 300 |")
    card.save(tmp_path)
    assert len(ModelCard.load(tmp_path).stages[0].curve) == 30
    assert card.stages[1].curve_values() == ([20 * (i + 1) for i in range(30)], [1.0 - 0.01 * i for i in range(30)])


def _damage(folder: Path, edit) -> None:
    value = json.loads((folder / CARD_FILE).read_text())
    edit(value)
    (folder / CARD_FILE).write_text(json.dumps(value))


@pytest.mark.parametrize("edit, message", [
    (lambda v: v["stages"][0]["curve"][1].update(minutes="soon"),
     r"card\.stages\[0\]\.curve\[1\]\.minutes: expected a number, got text \"soon\""),
    (lambda v: v["stages"][1].pop("steps"), r"card\.stages\[1\]: missing field 'steps'"),
    (lambda v: v.update(colour="red"), r"card: unknown field\(s\) colour"),
    (lambda v: v.update(samples={"seed": 0}), r"card\.samples: expected a list, got an object"),
    (lambda v: v["samples"][0].update(seed=True), r"card\.samples\[0\]\.seed: expected a whole number, got true/false"),
    (lambda v: v.update(schema=2), r"schema 2 is not this version's card format \(1\); re-export"),
    (lambda v: v["stages"][0].update(curve_metric="bleu"), r"no 'bleu' \(its curve_metric\)"),
    (lambda v: v["target"].update(data="wiki"), r"target: 'wiki' is not one of the reconstruction rows"),
])
def test_an_invalid_card_names_the_file_and_the_field(tmp_path, edit, message):
    make_card().save(tmp_path)
    _damage(tmp_path, edit)
    with pytest.raises(CardError, match=message) as err:
        ModelCard.load(tmp_path)
    assert str(err.value).startswith(str(tmp_path / CARD_FILE))


@pytest.mark.parametrize("data, message", [(b'{"name": "x",', "is not valid JSON: Expecting"),
                                           (b"\xff\xfe\x00", "is not UTF-8 text"),
                                           (b"[1, 2]", "card: expected an object, got a list")])
def test_a_corrupt_card_is_a_clear_error(tmp_path, data, message):
    (tmp_path / CARD_FILE).write_bytes(data)
    with pytest.raises(CardError, match=message):
        ModelCard.load(tmp_path)


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda f: f.name)
def test_shipped_readmes_are_rendered_from_their_cards(folder):
    card = ModelCard.load(folder)
    assert card is not None and card.name == folder.name
    assert (folder / "README.md").read_text(encoding="utf-8") == card.to_markdown()
    assert len(card.samples) == 10 and [s.name for s in card.stages] == ["autoencoder", "diffusion"]
    assert card.prompted == (folder.name == "cosmos-story-cpu")
