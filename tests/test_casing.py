"""Usual casing for an uncased tokenizer's text (issue 27): the table built from a corpus, its restorer,
the detokenizer that applies it (never for a cased tokenizer), casing.json in a pipeline folder, and the
embedded checkpoints' tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from transformers import BertTokenizer

from cosmos import CheckpointError, CosmosPipeline
from cosmos.casing import CASING_FILE, WORD, CasingTable, build_casing, lowercases
from cosmos.checkpoint import DEFAULT_CHECKPOINT
from cosmos.detokenize import Detokenizer, join_wordpieces

CORPUS = [
    "Once upon a time, there was a girl named Lily. Lily had a red ball. She gave it to Tom and Mr. Brown.",
    "Tom and Lily played with the ball. Tom said, \"Let's play!\" Then they watched TV with Mr. Brown.",
    "The ball was big. Lily said, \"We can play.\" I think Lily and Tom like the TV.",
    "Ball games are fun. \"Come here,\" she said. Lily said yes, and I may play too, so I saw Sam.",
]


@pytest.fixture(scope="module")
def table() -> CasingTable:
    return build_casing(CORPUS)


def test_build_keeps_words_mostly_cased_mid_sentence(table):
    assert table.words == {"lily": "Lily", "tom": "Tom", "tv": "TV", "i": "I", "mr": "Mr"}
    # "Ball"/"Once"/"Then" are capitalised only where a sentence starts, "may" never; "Brown" only follows
    # "Mr." (a full stop: not counted); "Sam" is seen once mid-sentence, below min_count
    assert "sam" in build_casing(CORPUS, min_count=1).words
    assert table.gaps == {"^": True, ".": True, ",“": True, "": False, ",": False}   # '"' read as opening
    assert table.source == {"texts": 4, "words_counted": 61, "min_count": 2}


def test_table_restores_text_like_its_corpus(table):
    assert table.restore("lily said, \" we can play. \" tom and mr. brown watched tv. i saw sam.") == \
        "Lily said, \" We can play. \" Tom and Mr. Brown watched TV. I saw sam."


QUOTES = CasingTable({"lily": "Lily", "tom": "Tom", "i": "I", "mr": "Mr", "tv": "TV"},
                     {"^": True, ".": True, "!": True, "?": True, "“": True, ".“": True, ",“": True, "!”": True,
                      "?”": False, ",”": False, "": False, ",": False})


def test_restore_sentence_starts_names_i_and_quotes():
    text = "lily saw tom. \" can i play? \" she said, \" i'm happy! \" then mr. brown watched tv."
    assert QUOTES.restore(text) == ("Lily saw Tom. \" Can I play? \" she said, \" I'm happy! \" Then Mr. Brown "
                                    "watched TV.")
    # a straight quote opens or closes by how many came before it: '," said' is not '"Said'
    assert QUOTES.restore('" hi, " said tom. tom said, " hi. "') == '" Hi, " said Tom. Tom said, " Hi. "'
    assert QUOTES.restore("“ hi, ” said tom.") == "“ Hi, ” said Tom."
    assert QUOTES.restore("") == "" and QUOTES.restore("...") == "..."
    assert QUOTES.restore("a zebra named zed.") == "A zebra named zed."     # words absent from the table stay
    assert QUOTES.restore("[UNK] is here") == "[UNK] is here"              # cased words are left as they are


def test_restore_changes_only_letter_case():
    text = "lily , tom ! i ' m ... \" ok \" 3 dogs — tv"
    out = QUOTES.restore(text)
    assert out == "Lily , Tom ! I ' m ... \" Ok \" 3 dogs — TV"      # '..."' is unseen: its ending '."' capitalises
    assert len(out) == len(text) and out.lower() == text


def test_unseen_gaps_back_off_to_their_ending():
    t = CasingTable({}, {".": True, ",": False})
    assert t.restore("a. b.. c,, d") == "a. B.. C,, d"             # no "^" measured: a text's start stays
    assert CasingTable({}, {"^": False, "“": True, "”": True}).restore('" a " b') == '" A " B'  # '^“' -> '“' 
    assert CasingTable().restore("a. b") == "a. b"        # no gaps measured: nothing capitalised


def test_json_round_trip_and_validation(table, tmp_path):
    path = table.save(tmp_path)
    assert path.name == CASING_FILE and CasingTable.load(tmp_path) == table
    assert CasingTable.load(tmp_path / "nowhere") is None
    good = json.loads(path.read_text())
    for change, message in [
        (lambda v: v.update(format="other"), "not a casing table"),
        (lambda v: v.update(version=99), "version 99"),
        (lambda v: v.update(words=["lily"]), '"words" must be an object'),
        (lambda v: v["words"].update(lily="Lucy"), "maps 'lily' to 'Lucy'"),
        (lambda v: v["words"].update(Tom="Tom"), "maps 'Tom'"),
        (lambda v: v["gaps"].update({". ": True}), '"gaps" must map'),
        (lambda v: v["gaps"].update({".": "yes"}), '"gaps" must map'),
        (lambda v: v.update(source=[]), '"source" must be an object'),
    ]:
        value = json.loads(json.dumps(good))
        change(value)
        path.write_text(json.dumps(value))
        with pytest.raises(CheckpointError, match=re.escape(message)) as err:
            CasingTable.load(tmp_path)
        assert "python -m train.casing" in str(err.value)
    path.write_text('{"format": "cosmos-cas')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        CasingTable.load(tmp_path)


def _tokenizer(folder: Path, lower: bool) -> BertTokenizer:
    words = ["lily", "tom", "saw", "i", "the", "ball", "m", "s", "Lily", "Tom", "Saw", "I", "The", "##s"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "'", "\"", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizer(str(folder / "vocab.txt"), do_lower_case=lower)


def _detokenizer(tokenizer, casing: CasingTable | None) -> Detokenizer:
    return Detokenizer(tokenizer, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id,
                       tokenizer.mask_token_id, casing)


def test_detokenizer_cases_uncased_text_and_pieces(tmp_path):
    tokenizer = _tokenizer(tmp_path, lower=True)
    assert lowercases(tokenizer)
    ids = torch.tensor([tokenizer.encode("Tom saw Lily's ball. I'm the ball", add_special_tokens=True)])
    detok = _detokenizer(tokenizer, QUOTES)
    assert detok.texts(ids) == ["Tom saw Lily's ball. I'm the ball"]
    tokens = detok.tokens(ids)[0]
    assert [p for _, p in tokens] == ["Tom", "saw", "Lily", "'", "s", "ball", ".", "I", "'", "m", "the", "ball"]
    assert [j for j, _ in tokens] == [j for j, _ in _detokenizer(tokenizer, None).tokens(ids)[0]]
    assert "".join(join_wordpieces([p for _, p in tokens])).lower() == \
        "".join(join_wordpieces([p for _, p in _detokenizer(tokenizer, None).tokens(ids)[0]]))
    assert _detokenizer(tokenizer, None).texts(ids) == ["tom saw lily's ball. i'm the ball"]


def test_detokenizer_keeps_wordpiece_markers(tmp_path):
    tokenizer = _tokenizer(tmp_path, lower=True)
    ids = torch.tensor([[2, tokenizer.convert_tokens_to_ids("tom"), tokenizer.convert_tokens_to_ids("##s"),
                         tokenizer.convert_tokens_to_ids("ball"), 3]])
    assert [p for _, p in _detokenizer(tokenizer, QUOTES).tokens(ids)[0]] == ["Tom", "##s", "ball"]
    assert _detokenizer(tokenizer, QUOTES).texts(ids) == ["Toms ball"]


def test_cased_tokenizer_is_left_alone(tmp_path):
    tokenizer = _tokenizer(tmp_path, lower=False)
    assert not lowercases(tokenizer)
    ids = torch.tensor([tokenizer.encode("the ball saw Tom. i saw lily", add_special_tokens=True)])
    detok = _detokenizer(tokenizer, QUOTES)
    assert not detok.restores_casing
    assert detok.texts(ids) == ["the ball saw Tom. i saw lily"]
    assert [p for _, p in detok.tokens(ids)[0]] == ["the", "ball", "saw", "Tom", ".", "i", "saw", "lily"]


def test_pipeline_folder_with_without_and_corrupt_casing(tiny_pipeline, tiny_encoder, table, tmp_path):
    ids = tiny_pipeline.tokenize("lily saw tom. i am here").input_ids
    tiny_pipeline.save_pretrained(tmp_path / "plain")
    assert not (tmp_path / "plain" / CASING_FILE).exists()
    plain = CosmosPipeline.from_pretrained(tmp_path / "plain", encoder=tiny_encoder)
    assert plain.ids_to_texts(ids) == ["lily saw tom. i am here"]      # older folders: lower case, as before

    cased = CosmosPipeline(tiny_encoder, tiny_pipeline.autoencoder, tiny_pipeline.denoiser,
                           tiny_pipeline.schedule.config, tiny_pipeline.sampling, table)
    cased.save_pretrained(tmp_path / "cased")
    loaded = CosmosPipeline.from_pretrained(tmp_path / "cased", encoder=tiny_encoder)
    assert loaded.ids_to_texts(ids) == ["Lily saw Tom. I am here"]
    assert CasingTable.load(tmp_path / "cased") == table
    assert [p for _, p in loaded.ids_to_tokens(ids)[0]][:3] == ["Lily", "saw", "Tom"]

    (tmp_path / "cased" / CASING_FILE).write_text('{"format": "cosmos-casing", "version": 1, "words": 3}')
    with pytest.raises(CheckpointError, match=r"casing\.json.*\"words\" must be an object"):
        CosmosPipeline.from_pretrained(tmp_path / "cased", encoder=tiny_encoder)


@pytest.mark.parametrize("folder", [DEFAULT_CHECKPOINT, DEFAULT_CHECKPOINT.parent / "cosmos-story-cpu"])
def test_embedded_checkpoints_carry_a_casing_table(folder):
    table = CasingTable.load(folder)
    assert table is not None and table.source["corpus"] == ["../shared/data/tinystories/train.jsonl"]
    assert {"lily": "Lily", "tom": "Tom", "i": "I", "tv": "TV"}.items() <= table.words.items()
    assert table.gaps["."] and table.gaps["?"] and table.gaps["^"] and not table.gaps[","]


def test_embedded_default_returns_cased_text():
    torch.manual_seed(0)
    pipe = CosmosPipeline.from_pretrained(DEFAULT_CHECKPOINT)
    text = "Once upon a time, there was a little girl named Lily. She said, \"I'm happy!\" Tom watched TV."
    assert WORD.findall(pipe.ids_to_texts(pipe.tokenize(text).input_ids)[0]) == WORD.findall(text)
    sample = pipe.generate(1, seed=0).texts[0]
    assert sample != sample.lower() and sample == CasingTable.load(DEFAULT_CHECKPOINT).restore(sample.lower())


def _corpus_overrides(tmp_path) -> list[str]:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS))
    return [f"diffusion_stage.data.sources={json.dumps([{'path': 'json', 'data_files': {'train': str(path)}}])}"]


def _train_casing(tmp_path, folder) -> None:
    from train.casing import main

    main(["--config", "tiny", "--out", str(folder), *(f"--set={o}" for o in _corpus_overrides(tmp_path))])


def test_train_casing_writes_the_corpus_table(tiny_pipeline, tmp_path, capsys):
    tiny_pipeline.save_pretrained(tmp_path / "folder")
    _train_casing(tmp_path, tmp_path / "folder")
    assert "5 words" in capsys.readouterr().out
    written = CasingTable.load(tmp_path / "folder")
    assert written.words == build_casing(CORPUS).words and written.source["corpus"] == [str(tmp_path / "train.jsonl")]
    (tmp_path / "folder" / CASING_FILE).write_text("{")                   # a corrupt table can be rebuilt
    _train_casing(tmp_path, tmp_path / "folder")
    assert CasingTable.load(tmp_path / "folder") == written
    with pytest.raises(SystemExit) as err:
        _train_casing(tmp_path, tmp_path / "nowhere")
    assert err.value.code == 2 and "not a pipeline folder" in capsys.readouterr().err


def test_train_casing_reads_both_sides_of_pairs(tmp_path):
    from train.casing import corpus_texts
    from train.config import load_config

    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS))
    pairs = json.dumps([{"path": "json", "split_sentences": 1, "data_files": {"train": str(path)}}])
    texts, names = corpus_texts(load_config("story-cpu", [f"diffusion_stage.pairs.sources={pairs}"]))
    assert names == [str(path)] and len(texts) == 8
    assert texts[:2] == ["Once upon a time, there was a girl named Lily.",
                         "Lily had a red ball. She gave it to Tom and Mr. Brown."]


def test_cased_encoder_gets_no_table(tmp_path):
    from train.casing import write_casing
    from train.config import load_config

    cfg = load_config("tiny", _corpus_overrides(tmp_path))
    assert write_casing(cfg, tmp_path, _tokenizer(tmp_path, lower=False)) is None
    assert not (tmp_path / CASING_FILE).exists()
    assert write_casing(cfg, tmp_path, _tokenizer(tmp_path, lower=True)) == tmp_path / CASING_FILE
