"""normalize_review and NormalizePipeline: text, dates, ratings and empty fields as the store wants them."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from scrapy.utils.test import get_crawler

from spiders.items import Reply, ReviewItem
from spiders.pipelines.normalize import (
    MAX_MARKUP_CHARS,
    NormalizePipeline,
    clamp_rating,
    clean_text,
    html_to_text,
    normalize_review,
    parse_datetime,
)


def review(**fields) -> ReviewItem:
    return ReviewItem(**{"external_id": "r1", "url": "https://reviews.example/r1", "body": "ok", **fields})


def test_body_whitespace_collapsed_paragraphs_kept():
    body = "  First   line\twith  tabs \r\nsecond line\n\n\n\n  New paragraph.  \n"
    assert normalize_review(review(body=body)).body == "First line with tabs\nsecond line\n\nNew paragraph."


def test_body_markup_stripped_and_entities_decoded():
    body = "<p>Great&nbsp;tea &amp; fast\n   delivery.</p><p>Would buy <b>again</b>.<br>Thanks!</p><script>x()</script>"
    assert normalize_review(review(body=body)).body == "Great tea & fast delivery.\n\nWould buy again.\nThanks!"
    assert clean_text("&lt;p&gt;Escaped markup&lt;/p&gt;then text") == "Escaped markup\n\nthen text"


def test_text_that_only_looks_like_markup_is_kept():
    assert clean_text("if x<y and z>w, I <3 it, 2 < 3") == "if x<y and z>w, I <3 it, 2 < 3"


def test_control_and_invisible_characters_removed():
    body = "Bad\x00 wi\u200bdget\x07\x1b[0m \ufeffhere\ud800"
    assert normalize_review(review(body=body)).body == "Bad widget here"  # the whole escape sequence goes
    assert "\u200d" in clean_text("👩\u200d💻")  # emoji joiners stay


def test_datetimes_become_utc_and_naive_means_utc():
    cest = timezone(timedelta(hours=2))
    normalized = normalize_review(
        review(
            published_at=datetime(2024, 6, 1, 12, 0),
            reply=Reply(body="Thanks", published_at=datetime(2024, 6, 2, 12, 0, tzinfo=cest)),
        )
    )
    assert normalized.published_at == datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert normalized.published_at.tzinfo is timezone.utc
    assert normalized.reply.published_at == datetime(2024, 6, 2, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-06-11T16:08:24.000Z", datetime(2024, 6, 11, 16, 8, 24, tzinfo=timezone.utc)),
        ("2016-04-11T18:57:49.000+02:00", datetime(2016, 4, 11, 16, 57, 49, tzinfo=timezone.utc)),
        ("2022-10-30", datetime(2022, 10, 30, tzinfo=timezone.utc)),
        ("May 24, 2018", datetime(2018, 5, 24, tzinfo=timezone.utc)),
        (date(2020, 1, 2), datetime(2020, 1, 2, tzinfo=timezone.utc)),
        ("10", None),  # dateutil would make it the 10th of this month
        ("yesterday", None),
        ("", None),
        (None, None),
        (12345, None),
    ],
)
def test_parse_datetime(value, expected):
    assert parse_datetime(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(4, 4.0), (4.5, 4.5), ("3", 3.0), ("4,5", 4.5), (0, 1.0), (7, 5.0), (-2, 1.0),
     (None, None), ("", None), ("five", None), (float("nan"), None), (float("inf"), None), (True, None)],
)
def test_ratings_clamped_to_1_5(value, expected):
    assert clamp_rating(value) == expected
    assert normalize_review(review(rating=value)).rating == expected


def test_empty_optional_fields_become_none():
    normalized = normalize_review(
        review(author="  ", title="\n", language="", reply=Reply(body=" <br> ", published_at=None))
    )
    assert (normalized.author, normalized.title, normalized.language, normalized.reply) == (None, None, None, None)


def test_one_line_fields_and_identity_fields():
    normalized = normalize_review(
        review(external_id=" 65f1a2b3 ", author="Ann\n  Lee", title="Good &amp; <i>cheap</i>", language="DA ",
               source="acme-trustpilot", snippet_hash="ab" * 32)
    )
    assert (normalized.external_id, normalized.author, normalized.title, normalized.language) == (
        "65f1a2b3", "Ann Lee", "Good & cheap", "da"
    )
    assert (normalized.source, normalized.snippet_hash) == ("acme-trustpilot", "ab" * 32)


def test_normalizing_twice_changes_nothing():
    once = normalize_review(review(body="<p>A &amp; B</p>\n\n\n<p>C</p>", title=" T ", rating="9"))
    assert normalize_review(once) == once


def test_html_to_text_treats_source_newlines_as_spaces():
    assert html_to_text("<p>Es\n mi primera\n compra.</p>") == "Es mi primera compra."


def test_pipeline_is_scrapy_2_19_style():
    crawler = get_crawler()
    crawler.stats.open_spider()
    pipeline = NormalizePipeline.from_crawler(crawler)

    out = pipeline.process_item(review(body="<p>Hi</p>", rating="n/a"))
    assert isinstance(out, ReviewItem) and out.body == "Hi" and out.rating is None
    assert pipeline.process_item({"not": "a review"}) == {"not": "a review"}
    assert crawler.stats.get_value("repwatch/problem/unreadable_rating") == 1


# --- the fast paths (already-clean text and already-normalized reviews) give exactly what the full work gives ---

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spiders.pipelines import normalize as normalize_module  # noqa: E402

_TRICKY = st.text(
    alphabet=st.sampled_from(list("ab é\n\t\r &<>p;/\x00\x1f\x85\xa0\u00ad\u200b\u2028\u3000\ufeff") + ["\ud800"]),
    max_size=30,
)


def _full_clean(text: str) -> str:
    """clean_text without its fast path."""
    if "&" in text:
        text = normalize_module.html.unescape(text)
    if "<" in text and normalize_module._LOOKS_LIKE_MARKUP.search(text):
        return html_to_text(text)
    return normalize_module.tidy_text(text)


@settings(max_examples=3000, deadline=None)
@given(_TRICKY)
def test_clean_text_fast_path_is_exact(text: str):
    assert clean_text(text) == _full_clean(text)
    assert normalize_module.clean_line(text) == (" ".join(_full_clean(text).split()) or None)
    if normalize_module._is_clean(text):
        assert _full_clean(text) == text


def test_an_already_normalized_review_comes_back_as_is():
    clean = review(body="Fine.\n\nReally.", title="T", author="Ann", rating=4.0, language="da",
                   published_at=datetime(2025, 1, 2, tzinfo=timezone.utc), reply=Reply("Thanks", None))
    assert normalize_review(clean) is clean
    for dirty in (
        review(rating=4),  # an int rating becomes a float
        review(language="DA"),
        review(published_at=datetime(2025, 1, 2, 1, tzinfo=timezone(timedelta(hours=1)))),
        review(reply=Reply("  Thanks ", None)),
        review(reply=Reply("\u200b", None)),
        review(external_id=" r1 "),
    ):
        normalized = normalize_review(dirty)
        assert normalized is not dirty and normalize_review(normalized) is normalized


def test_ids_and_links_keep_no_character_a_database_refuses():
    """SQLite refuses lone surrogates and PostgreSQL NUL: an id keeps them as escapes (distinct and stable from crawl
    to crawl), a link drops them."""
    normalized = normalize_review(review(external_id=" r1\ud800\x00  x ", url=" https://r.example/1\x00\udcff "))
    assert (normalized.external_id, normalized.url) == ("r1\\ud800\\u0000 x", "https://r.example/1")
    assert normalize_review(review(external_id="r1\ud801")).external_id != normalize_review(review(external_id="r1\ud800")).external_id


def test_markup_past_the_cap_is_not_read():
    text = html_to_text("<p>" + "a" * MAX_MARKUP_CHARS + "</p><p>tail</p>")
    assert text == "a" * (MAX_MARKUP_CHARS - 3)


def test_unclosed_script_and_style_hide_what_follows_them_and_nul_is_dropped():
    assert html_to_text("<p>Cold coffee.</p>" + "<script>" * 1000) == "Cold coffee."
    assert html_to_text("<p>Cold\x00 coffee.</p><style>p {}") == "Cold coffee."
