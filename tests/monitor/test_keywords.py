"""Keyword matching as a reader expects it: whole words, `stem*` word starts, phrases, any case, any accents."""
from __future__ import annotations

import pytest

from monitor.keywords import KeywordSet, fold


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("ÎNȘELĂTORIE", "inselatorie"),
        ("înşelătorie", "inselatorie"),  # Romanian typed with cedillas folds the same as with commas below
        ("Απάτη", "απατη"),
        ("ΑΠΑΤΗΣ", "απατησ"),  # Greek final sigma and capital sigma are one letter
        ("απάτης", "απατησ"),
        ("sukčiai", "sukciai"),
        ("Złodziej", "zlodziej"),
        ("Straße", "strasse"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_fold_drops_case_and_accents(text, folded):
    assert fold(text) == folded


def test_a_word_matches_only_the_whole_word():
    scam = KeywordSet(["scam"])
    assert scam.find("What a SCAM!") == ["scam"]
    assert scam.find("Scampi were great.") == []
    assert scam.find("anti-scam") == ["scam"]  # a hyphen ends a word


def test_a_stem_matches_every_word_starting_with_it_but_not_inside_words():
    fraud = KeywordSet(["oszust*"])
    assert fraud.find("To oszuści, oszustwo w biały dzień") == ["oszust*"]
    assert fraud.find("Nieoszustwo") == []


def test_keywords_and_text_fold_the_same_way():
    assert KeywordSet(["preț"]).find("Pretul e mare, pret prea mare") == ["preț"]
    assert KeywordSet(["pret"]).find("Prețul e mare, preț prea mare") == ["pret"]
    assert KeywordSet(["καθυστέρ*"]).find("ΜΕΓΑΛΗ ΚΑΘΥΣΤΕΡΗΣΗ") == ["καθυστέρ*"]


def test_a_phrase_allows_any_whitespace_between_its_words():
    phrase = KeywordSet(["money back"])
    assert phrase.find("I want my money\n  back now") == ["money back"]
    assert phrase.find("money-back guarantee") == []
    assert phrase.find("money backing") == []


def test_found_keywords_are_listed_once_in_order_of_first_appearance():
    keywords = KeywordSet(["rude", "late*", "cold"])
    assert keywords.find("Cold soup, late again, rude waiter, cold coffee, later still") == ["cold", "late*", "rude"]


def test_empty_keywords_and_empty_text_find_nothing():
    assert not KeywordSet(["", "  ", "*"])
    assert KeywordSet(["", "*"]).find("anything") == []
    assert KeywordSet(["scam"]).find("") == []
    assert KeywordSet(["  scam  "]).keywords == ["scam"]
