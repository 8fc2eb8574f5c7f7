"""bench/conditional.py: the BERTScore-style F1 on hand-checkable features, the shuffled-prompt control,
the pairs, and the whole script end to end on a tiny conditional pipeline and made-up stories (no
TinyStories text here)."""

from __future__ import annotations

import json

import pytest
import torch

from bench.conditional import bertscore, derangement, greedy_match_scores, main, scored_tokens, story_pairs

from conftest import make_tiny_conditional_pipeline, make_tiny_pipeline
from test_train import _stories

E = torch.eye(4)                               # orthonormal token features e0..e3


def scores(cand, ref, cand_mask=None, ref_mask=None):
    """(P, R, F1) of one pair given as lists of feature rows."""
    cand, ref = torch.stack(cand)[None], torch.stack(ref)[None]
    cand_mask = torch.ones(cand.shape[:2], dtype=torch.bool) if cand_mask is None else torch.tensor([cand_mask])
    ref_mask = torch.ones(ref.shape[:2], dtype=torch.bool) if ref_mask is None else torch.tensor([ref_mask])
    return tuple(float(v[0]) for v in greedy_match_scores(cand, cand_mask, ref, ref_mask))


# --- F1 on features ------------------------------------------------------------------------------------
def test_identical_tokens_score_one():
    assert scores([E[0], E[1], E[2]], [E[0], E[1], E[2]]) == pytest.approx((1, 1, 1))
    assert scores([E[2], E[0]], [E[0], E[2]]) == pytest.approx((1, 1, 1))            # order does not matter


def test_disjoint_tokens_score_zero():
    assert scores([E[0], E[1]], [E[2], E[3]]) == pytest.approx((0, 0, 0))


def test_a_hand_computed_pair():
    # candidate e0 e1, reference e0: precision (1 + 0) / 2, recall 1 / 1, F1 = 2 * 0.5 * 1 / 1.5
    assert scores([E[0], E[1]], [E[0]]) == pytest.approx((0.5, 1.0, 2 / 3))
    # a token half-way between e0 and e1 matches either with cosine 1/sqrt(2)
    mid = (E[0] + E[1]) / 2
    p, r, f = scores([mid], [E[0], E[1]])
    assert (p, r, f) == pytest.approx((2 ** -0.5, 2 ** -0.5, 2 ** -0.5))


def test_matching_is_greedy_per_token_not_one_to_one():
    # every candidate token may match the same reference token (BERTScore's greedy matching)
    assert scores([E[0], E[0], E[0]], [E[0], E[1]]) == pytest.approx((1.0, 0.5, 2 / 3))


def test_f1_is_symmetric_and_precision_recall_swap():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 5, 8, generator=g), torch.randn(2, 7, 8, generator=g)
    ma, mb = torch.ones(2, 5, dtype=torch.bool), torch.ones(2, 7, dtype=torch.bool)
    ma[1, 3:] = False
    p, r, f = greedy_match_scores(a, ma, b, mb)
    p2, r2, f2 = greedy_match_scores(b, mb, a, ma)
    assert torch.allclose(f, f2) and torch.allclose(p, r2) and torch.allclose(r, p2)


def test_padding_is_ignored():
    g = torch.Generator().manual_seed(1)
    cand, ref = torch.randn(1, 3, 8, generator=g), torch.randn(1, 4, 8, generator=g)
    plain = greedy_match_scores(cand, torch.ones(1, 3, dtype=torch.bool), ref, torch.ones(1, 4, dtype=torch.bool))
    padded_cand = torch.cat([cand, 100 * ref[:, :2]], 1)          # padding equal to reference tokens: would match
    padded_ref = torch.cat([ref, 100 * cand], 1)
    mask_c = torch.tensor([[True, True, True, False, False]])
    mask_r = torch.tensor([[True] * 4 + [False] * 3])
    padded = greedy_match_scores(padded_cand, mask_c, padded_ref, mask_r)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(plain, padded))


def test_rows_of_a_batch_are_independent_and_scale_does_not_matter():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(3, 4, 8, generator=g), torch.randn(3, 6, 8, generator=g)
    ma, mb = torch.ones(3, 4, dtype=torch.bool), torch.ones(3, 6, dtype=torch.bool)
    batch = greedy_match_scores(a, ma, b, mb)
    for i in range(3):
        row = greedy_match_scores(a[i:i + 1], ma[i:i + 1], b[i:i + 1], mb[i:i + 1])
        assert all(torch.allclose(x[i], y[0], atol=1e-6) for x, y in zip(batch, row))
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(batch, greedy_match_scores(3 * a, ma, 0.1 * b, mb)))


def test_an_empty_side_scores_zero():
    assert scores([E[0], E[1]], [E[0], E[1]], cand_mask=[False, False]) == (0.0, 0.0, 0.0)
    assert scores([E[0], E[1]], [E[0], E[1]], ref_mask=[False, False]) == (0.0, 0.0, 0.0)


# --- F1 on texts -----------------------------------------------------------------------------------------
def test_identical_texts_score_one_and_specials_are_not_scored(tiny_encoder):
    texts = ["the cat sat on the mat", "a dog ran in the park"]
    out = bertscore(tiny_encoder, texts, texts, max_length=16)
    assert out["f1"] == pytest.approx([1.0, 1.0]) and out["precision"] == pytest.approx([1.0, 1.0])
    tok = tiny_encoder.tokenize(texts, 16)
    assert scored_tokens(tiny_encoder, tok).sum(1).tolist() == [6, 6]       # the words, no [CLS] / [SEP] / [PAD]


def test_text_f1_is_symmetric_and_empty_text_scores_zero(tiny_encoder):
    a, b = ["the cat sat on the mat", ""], ["a dog ran in the park today", "a dog"]
    ab, ba = bertscore(tiny_encoder, a, b, 16), bertscore(tiny_encoder, b, a, 16)
    assert ab["f1"] == pytest.approx(ba["f1"]) and ab["precision"] == pytest.approx(ba["recall"])
    assert 0 < ab["f1"][0] < 1 and ab["f1"][1] == 0.0
    with pytest.raises(ValueError, match="2 candidates but 1 references"):
        bertscore(tiny_encoder, a, b[:1], 16)


def test_references_are_cut_to_the_model_length(tiny_encoder):
    short = "the cat sat on the mat"
    long = short + " and then it ran away into the dark green forest far from home"
    assert bertscore(tiny_encoder, [short], [long], max_length=8)["f1"] == pytest.approx([1.0])   # 6 words fit
    assert bertscore(tiny_encoder, [short], [long], max_length=32)["f1"][0] < 0.99


# --- the control and the pairs ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 10, 101])
def test_derangement_moves_every_prompt(n):
    perm = derangement(n, seed=0)
    assert sorted(perm) == list(range(n)) and all(perm[i] != i for i in range(n))
    assert perm == derangement(n, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1, 0)


def _write_stories(folder, n=12, seed=3):
    folder.mkdir(parents=True, exist_ok=True)
    stories = _stories(n, seed) + ["One sentence only."]              # no rest: not a pair
    (folder / "test.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in stories))
    return stories


def test_story_pairs_split_after_the_first_sentence(tmp_path):
    stories = _write_stories(tmp_path / "data")
    pairs = story_pairs(tmp_path / "data", 100)
    assert len(pairs) == 12                                         # the one-sentence story gives no pair
    expected = {(s.split(". Then ")[0] + ".", "Then " + s.split(". Then ")[1]) for s in stories[:12]}
    assert set(pairs) == expected
    five = story_pairs(tmp_path / "data", 5)
    assert len(five) == 5 and five == story_pairs(tmp_path / "data", 5)          # seeded draw


# --- end to end ---------------------------------------------------------------------------------------------
def test_the_script_end_to_end(tmp_path, tiny_encoder, tiny_encoder_dir, capsys):
    _write_stories(tmp_path / "data")
    make_tiny_conditional_pipeline(tiny_encoder, tiny_encoder_dir).save_pretrained(tmp_path / "story-tiny")
    argv = ["--pipeline", str(tmp_path / "story-tiny"), "--data", str(tmp_path / "data"), "--prompts", "6",
            "--seeds", "2", "--steps", "2", "--scales", "0", "1.5", "--out", str(tmp_path / "results")]
    result = main(argv)
    written = json.loads((tmp_path / "results/conditional-story-tiny.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert written["settings"]["prompts"] == 6 and written["settings"]["scales"] == [0.0, 1.5]
    assert [row["guidance_scale"] for row in written["scales"]] == [0.0, 1.5]
    for row in written["scales"]:
        for key in ("f1", "precision", "recall", "f1_shuffled", "f1_gap", "diversity", "empty_share", "seconds"):
            assert len(row[key]["runs"]) == 2 and row[key]["std"] >= 0, key
        assert all(-1 <= v <= 1 for key in ("f1", "f1_shuffled") for v in row[key]["runs"])
        assert row["f1_gap"]["runs"] == pytest.approx([a - b for a, b in zip(row["f1"]["runs"],
                                                                              row["f1_shuffled"]["runs"])], abs=2e-4)
        assert all(0 <= v <= 1 for v in row["diversity"]["runs"])
    assert 0 < written["reference"]["diversity"] <= 1
    printed = capsys.readouterr().out
    assert "F1 shuffled" in printed and "reference continuations: diversity" in printed and "wrote " in printed
    again = main(argv)                                              # seeded: the same numbers
    assert [r["f1"]["runs"] for r in again["scales"]] == [r["f1"]["runs"] for r in written["scales"]]


def test_the_script_refuses_an_unconditional_pipeline(tmp_path, tiny_encoder, tiny_encoder_dir):
    _write_stories(tmp_path / "data")
    make_tiny_pipeline(tiny_encoder, tiny_encoder_dir).save_pretrained(tmp_path / "plain")
    with pytest.raises(SystemExit, match="is unconditional"):
        main(["--pipeline", str(tmp_path / "plain"), "--data", str(tmp_path / "data"), "--out", str(tmp_path)])
