"""ConsumeraffairsSpider on our hand-written page and on the real saved ConsumerAffairs page."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from spiders.extract import choose_spider, extract_reviews
from spiders.sites.consumeraffairs import ConsumeraffairsSpider
from tests.spiders._pages import fingerprint, html_response, page_bytes

BIZ_URL = "https://www.consumeraffairs.com/moving/brightwater-movers.html"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse(name_or_body, url=BIZ_URL):
    spider = ConsumeraffairsSpider(url=url)
    response = html_response(name_or_body, url)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_reads_every_review_block_with_its_fields():
    spider, reviews, next_url = parse("consumeraffairs.html")

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("5100001", 5, utc(2024, 3, 3)),  # the featured review is a review of this company too
        ("5234567", 1, utc(2024, 9, 28)),  # "Sept." is September
        ("5198765", 4, utc(2024, 8, 1)),
    ]
    marcus = reviews[1]
    assert marcus.author == "Marcus of Reno, NV"
    assert marcus.url == BIZ_URL + "#review-5234567"
    # The collapsed part is text; the "View more" toggle is not.
    assert marcus.body == (
        "The quote said $1,200 & the bill said $1,950.\n\n"
        "Nobody answered the phone for a week after the move.\nTwo boxes are still missing."
    )
    assert marcus.reply.body == "Marcus, we found both boxes in our depot.\n\nThey are on the way to you today."
    assert marcus.reply.published_at == utc(2024, 10, 2)
    assert all(len(r.snippet_hash) == 64 for r in reviews)
    assert next_url == BIZ_URL + "?page=2"
    assert not spider.problems


def test_reviewers_own_follow_up_is_their_text_not_a_company_reply():
    _, reviews, _ = parse("consumeraffairs.html")
    jo_ann = reviews[2]
    assert jo_ann.reply is None
    assert jo_ann.published_at == utc(2024, 8, 1)  # the original date, not the follow-up's
    assert jo_ann.body == (
        "Charged me for storage I never asked for.\n\n"
        "Resolution response: Aug. 20, 2024\nThey refunded the storage fee. Raising my rating."
    )


def test_review_url_ignores_the_page_number():
    _, reviews, next_url = parse("consumeraffairs.html", BIZ_URL + "?page=2")
    assert reviews[0].url == BIZ_URL + "#review-5100001"
    assert next_url is None  # a next link to the page itself is not followed


def test_last_page_and_pager_link_only():
    body = page_bytes("consumeraffairs.html")
    without_head_link = re.sub(rb'<link rel="next"[^>]*>', b"", body)
    assert parse(without_head_link, BIZ_URL)[2] == BIZ_URL + "?page=2"  # a.js-pager-next
    last = re.sub(rb"<nav .*?</nav>", b"", without_head_link, flags=re.S)
    assert parse(last, BIZ_URL + "?page=9")[2] is None


def test_bad_fields_are_counted_not_fatal():
    body = (
        page_bytes("consumeraffairs.html")
        .replace(b"Original review: Sept. 28, 2024", b"Original review: Smarch 28, 2024")
        .replace(b'<meta itemprop="ratingValue" content="4">', b'<meta itemprop="ratingValue" content="40">')
        .replace(b'data-id="5100001"', b'data-id=""').replace(b'id="review-5100001"', b"")
    )
    spider, reviews, _ = parse(body)

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("5234567", 1, None), ("5198765", None, utc(2024, 8, 1)),
    ]
    assert spider.problems == {
        "consumeraffairs/missing_id": 1, "consumeraffairs/bad_date": 1, "consumeraffairs/bad_rating": 1,
    }


def test_auto_detection_by_host_and_by_content():
    assert choose_spider(BIZ_URL, b"<html></html>") == "consumeraffairs"
    assert choose_spider("", page_bytes("consumeraffairs.html")) == "consumeraffairs"
    reviews = extract_reviews(page_bytes("consumeraffairs.html"), "")  # URL from the canonical link
    assert [r.source for r in reviews] == ["consumeraffairs"] * 3
    assert reviews[1].url == BIZ_URL + "#review-5234567"


# --- the real saved page (../shared/fixtures) -------------------------------------------------------------------

REAL_PAGE = "consumeraffairs/cabaleirog__sellmytimesharenow__2018-11.html"
REAL_URL = "https://www.consumeraffairs.com/travel/sell-my-timeshare-now.html"


@pytest.mark.fixtures
def test_real_page(real_pages: Path):
    body = (real_pages / REAL_PAGE).read_bytes()
    spider = ConsumeraffairsSpider(url=REAL_URL)
    response = html_response(body, REAL_URL)
    reviews = list(spider.parse_reviews(response))

    assert len(reviews) == 31 and len({r.external_id for r in reviews}) == 31
    assert [r.rating for r in reviews] == [
        5, 1, 3, 1, 1, 5, 5, 3, 5, 4, 5, 1, 4, 5, 5, 5, 4, 5, 4, 5, 5, 1, 1, 1, 5, 5, 4, 1, 5, 5, 1,
    ]
    first, second, last = reviews[0], reviews[1], reviews[-1]
    assert (first.external_id, fingerprint(first.author), first.published_at) == ("3676078", "8a3989e6c596", utc(2018, 5, 24))
    assert (second.external_id, fingerprint(second.author), second.published_at) == (
        "4108841", "e980b86bd5b2", utc(2018, 9, 28)
    )
    assert fingerprint(second.body[:69]) == "157ef59ab5df"
    assert fingerprint(second.body[-51:]) == "ea925960b4a0"  # the collapsed part too
    assert (last.external_id, last.published_at) == ("3683017", utc(2018, 5, 26))
    # The one reviewer follow-up is appended to that review; no review on this page has a company reply.
    (followed_up,) = [r for r in reviews if "Resolution response:" in r.body]
    assert followed_up.external_id == "3743872" and followed_up.published_at == utc(2018, 6, 13)
    assert "\n\nResolution response: June 26, 2018\n" in followed_up.body
    assert all(r.reply is None for r in reviews)
    assert all(r.body and "View more" not in r.body and "Original review" not in r.body for r in reviews)
    assert spider.next_page(response) == REAL_URL + "?page=2"
    assert not spider.problems


@pytest.mark.fixtures
def test_real_page_auto_detected_without_url(real_pages: Path):
    body = (real_pages / REAL_PAGE).read_bytes()
    assert choose_spider("", body) == "consumeraffairs"
    assert len(extract_reviews(body, "")) == 31
    reviews = extract_reviews(body, REAL_URL + "?page=1")
    assert len(reviews) == 31 and reviews[1].url == REAL_URL + "#review-4108841"
