"""bench/quality.py's text metrics on hand-checked examples."""

import math

import pytest

from bench.quality import diversity, memorization, ngrams, reconstruction, words


def test_words_split_punctuation_and_lowercase():
    assert words("Tom's dog, Max!") == ["tom", "'", "s", "dog", ",", "max", "!"]


def test_diversity_is_the_product_of_unique_ratios():
    # "a b a b a": 2-grams ab ba ab ba -> 2/4; 3-grams aba bab aba -> 2/3; 4-grams abab baba -> 2/2
    assert diversity(["a b a b a"]) == pytest.approx(0.5 * (2 / 3) * 1.0)
    assert diversity(["one two three four five"]) == 1.0
    assert diversity(["x x x x x x x x"]) == pytest.approx((1 / 7) * (1 / 6) * (1 / 5))
    assert diversity(["too short"]) == 0.0          # no 3- or 4-grams at all


def test_memorization_counts_generated_4grams_found_in_training():
    train = {g for g in ngrams(words("the cat sat on the mat"), 4)}
    assert memorization(["the cat sat on the rug"], train) == pytest.approx(2 / 3)   # 2 of its 3 4-grams
    assert memorization(["nothing like it at all"], train) == 0.0
    assert memorization(["tiny"], train) == 0.0


def test_reconstruction_accuracy_is_a_share_and_noise_is_seeded(tiny_pipeline):
    texts = ["a small test sentence", "another one here"]
    clean = reconstruction(tiny_pipeline, texts)
    noisy = reconstruction(tiny_pipeline, texts, noise=1.0, seed=3)
    assert 0.0 <= clean <= 1.0 and 0.0 <= noisy <= 1.0 and not math.isnan(noisy)
    assert noisy == reconstruction(tiny_pipeline, texts, noise=1.0, seed=3)


def test_mid_text_start_share():
    from cosmos.metrics import mid_text_start_share
    # a word's tail and a lone punctuation mark begin mid-text, a word does not; empty samples are left out
    assert mid_text_start_share(["once", "##ed", ",", "tom", ""]) == pytest.approx(2 / 4)
    assert mid_text_start_share([]) == 0.0
