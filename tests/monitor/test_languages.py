"""Language packs: every pack found is well formed and each part of it does its job; a broken pack says where."""
from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.drafts import Drafts
from monitor.keywords import fold
from monitor.languages import (
    DEFAULT_DRAFT,
    LISTING_ORDER,
    PACKS_DIR,
    LanguagePackError,
    codes,
    load_pack,
    load_packs,
    pack,
)
from monitor.rules import CriticalWords, decide
from monitor.sentiment.cues import ComplaintCues
from monitor.sentiment.language import (
    DEFAULT_LANGUAGES,
    LanguageDetector,
    normalize_lang,
)
from monitor.sentiment.multilingual import (
    ANCHOR_HEAD,
    DEFAULT_BAND,
    MultilingualScorer,
    anchors,
    anchors_digest,
)
from monitor.topics import builtin_matcher

CODES = codes()
SEEN = datetime(2026, 11, 20, 12, tzinfo=UTC)


def containing(keyword: str) -> str:
    """A short text with the keyword in it, a stem written as it is (a stem matches the start of a word)."""
    return f"Well. {keyword.rstrip('*')} . Well"


# --------------------------------------------------------------------------------------------------------------
# Every pack


@pytest.mark.parametrize("code", CODES)
def test_a_pack_is_named_by_its_code_and_loads_as_the_registry_has_it(code):
    path = PACKS_DIR / f"{code}.yaml"
    assert load_pack(path) == pack(code)


@pytest.mark.parametrize("code", CODES)
def test_every_pack_language_is_detected(code):
    other = "de" if code == "en" else "en"
    LanguageDetector([code, other]).check()  # lingua knows it (by its `lingua:` code where that differs)
    assert code in DEFAULT_LANGUAGES
    assert normalize_lang(code) == code and normalize_lang(code.upper() + "-XX") == code
    for alias in pack(code).aliases:
        assert normalize_lang(alias) == code


@pytest.mark.parametrize("code", CODES)
def test_its_critical_words_make_a_negative_review_critical(code):
    critical = CriticalWords()
    for word in pack(code).critical:
        found = critical.find(containing(word), code)
        decision = decide(label="neg", rating=2, score=-0.3, published_at=SEEN, first_seen_at=SEEN, baseline=False,
                          baseline_window=timedelta(hours=72), keywords=found)  # fmt: skip
        assert decision.severity == "critical", (word, found)
        assert critical.find(containing(word), None), word  # also when the review's language is unknown


@pytest.mark.parametrize("code", CODES)
def test_its_topic_words_find_their_topic(code):
    matcher = builtin_matcher()
    missed = [(topic, word) for topic, words in pack(code).topics.items() for word in words
              if topic not in matcher.topics(containing(word), code)]  # fmt: skip
    assert not missed


@pytest.mark.parametrize("code", CODES)
def test_its_false_friends_are_english_topic_words_left_out_of_its_reviews(code):
    english = builtin_matcher()
    for word in pack(code).false_friends:
        assert english.topics(containing(word), "en"), word
        assert not any(word in found for found in english.keywords_found(containing(word), code).values()), word


@pytest.mark.parametrize("code", CODES)
def test_its_cues_get_a_high_rated_review_read(code):
    cues = ComplaintCues()
    assert not [word for word in pack(code).cues if not cues.found(containing(word), code)]


@pytest.mark.parametrize("code", CODES)
def test_its_drafts_render_with_author_business_and_site(code):
    drafts = Drafts()
    for key, template in pack(code).drafts.items():
        topics = [] if key == DEFAULT_DRAFT else [key]
        assert drafts.template(code, topics) == template
        text = drafts.draft(language=code, topics=topics, author="Ana  Pop", business="Bistro Nord", site="Yelp")
        assert text and "{" not in text and "}" not in text, (key, text)
        for placeholder, value in (("{author}", "Ana Pop"), ("{business}", "Bistro Nord"), ("{site}", "Yelp")):
            assert (value in text) == (placeholder in template), (key, placeholder)


@pytest.mark.parametrize("code", CODES)
def test_its_anchors_are_read_in_order_with_their_labels(code):
    for label in ("neg", "neu", "pos"):
        read = [sentence for lab, lang, sentence in anchors() if lab == label and lang == code]
        assert read == list(getattr(pack(code).anchors, label))


@pytest.mark.parametrize("code", CODES)
def test_its_band_sets_the_models_thresholds(code):
    assert MultilingualScorer(model=None).band(code) == (pack(code).band or DEFAULT_BAND)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", CODES)
def test_its_letters_fold_as_it_says(code):
    for letter, meant in {**pack(code).same_letters, **pack(code).fold_letters}.items():
        assert fold(letter) == fold(meant) and fold(letter.upper()) == fold(meant), letter


# --------------------------------------------------------------------------------------------------------------
# The registry


def test_packs_are_listed_in_the_anchor_order_then_by_code():
    listed = [code for code in LISTING_ORDER if code in CODES]
    assert CODES == (*listed, *sorted(set(CODES) - set(listed)))
    assert set(DEFAULT_LANGUAGES) == set(CODES)


def test_the_shipped_head_was_fitted_on_the_packs_anchors():
    """Editing anchor sentences refits the head at every load until `bench/bench_score.py --fit-anchors` runs."""
    assert json.loads(ANCHOR_HEAD.read_text(encoding="utf-8"))["info"]["anchors"] == anchors_digest()


def test_a_new_language_is_one_more_file(tmp_path):
    for code in ("en", "pl"):
        shutil.copy(PACKS_DIR / f"{code}.yaml", tmp_path)
    (tmp_path / "ga.yaml").write_text("critical: [calaois]\ncues: [uafásach]\n", encoding="utf-8")
    loaded = load_packs(tmp_path)
    assert list(loaded) == ["en", "pl", "ga"]
    assert loaded["ga"].critical == ("calaois",) and loaded["pl"] == pack("pl")


def write(tmp_path: Path, text: str, name: str = "pl.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("critcal: [oszust*]\n", "critcal: unknown key (did you mean critical?)", id="unknown-key"),
        pytest.param("band: {neg: -0.1, pos: 0.1, mid: 0}\n", "band.mid: unknown key (one of: neg, pos)", id="nested-key"),
        pytest.param("topics:\n  delivry: [kurier*]\n", "topics.delivry: unknown topic 'delivry' (did you mean delivery?)",
                     id="unknown-topic"),
        pytest.param("drafts: {default: 'Dzień dobry {autor}'}\n",
                     "drafts.default: unknown placeholder {autor}; use {author}, {business}, {site}", id="placeholder"),
        pytest.param("drafts: {delivery: 'Dzień dobry {author}'}\n",
                     "drafts: needs a `default` draft for reviews none of whose topics has one", id="no-default-draft"),
        pytest.param("critical: [oszust*, no]\n",
                     "critical.1: expected text (quote words YAML reads as something else: yes, no, on, off, numbers)",
                     id="yaml-boolean"),
        pytest.param("cues: [' nie polecam']\n",
                     "cues.0: ' nie polecam' is not a keyword (a word, a phrase, or a stem ending in *)", id="blank"),
        pytest.param("cues: ['nie*polecam']\n", "cues.0: 'nie*polecam': * may only end a stem", id="inner-star"),
        pytest.param("critical: oszust*\n", "critical: Input should be a list", id="not-a-list"),
        pytest.param("band: {neg: 0.1, pos: -0.1}\n", "band: neg (0.1) must be below pos (-0.1)", id="band"),
        pytest.param("fold_letters: {Ł: l}\n", "fold_letters.Ł: 'Ł' is not one lower-case letter", id="letter"),
        pytest.param("critical: [a]\ncritical: [b]\n", "line 2, column 1: not valid YAML: 'critical' is given twice",
                     id="key-twice"),
        pytest.param("- oszust*\n", "the top level must be a mapping of keys, got list", id="not-a-mapping"),
    ],
)
def test_a_broken_pack_names_its_file_and_key_on_one_line(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(LanguagePackError) as error:
        load_pack(path)
    assert str(error.value) == f"{path}: {problem}"


def test_a_pack_that_is_not_yaml_says_where(tmp_path):
    path = write(tmp_path, "critical: [oszust*\n")
    with pytest.raises(LanguagePackError) as error:
        load_pack(path)
    assert str(error.value).startswith(f"{path}: line 2, column 1: not valid YAML: ")
    assert "\n" not in str(error.value)


def test_a_pack_file_is_named_by_its_code(tmp_path):
    path = write(tmp_path, "critical: [scam*]\n", name="english.yaml")
    with pytest.raises(LanguagePackError, match=r"english\.yaml: a pack is named by its two-letter ISO 639-1 code"):
        load_pack(path)


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"no.yaml": "aliases: [nb]\n", "da.yaml": "aliases: [nb]\n"}, "no.yaml: aliases: 'nb' already names da.yaml"),
        ({"da.yaml": "aliases: ['no']\n", "no.yaml": ""}, "da.yaml: aliases: 'no' already names no.yaml"),
        ({"pl.yaml": "false_friends: [stal]\n"}, "pl.yaml: false_friends: 'stal' is not an English topic word"),
        ({"da.yaml": "fold_letters: {ø: o}\n", "no.yaml": "fold_letters: {ø: oe}\n"},
         "no.yaml: fold_letters.ø: da.yaml reads it as 'o'"),
    ],
)
def test_packs_that_contradict_each_other_name_the_file(tmp_path, files, problem):
    shutil.copy(PACKS_DIR / "en.yaml", tmp_path)
    for name, text in files.items():
        write(tmp_path, text, name)
    with pytest.raises(LanguagePackError) as error:
        load_packs(tmp_path)
    assert str(error.value) == f"{tmp_path}/{problem}"
