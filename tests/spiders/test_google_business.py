"""GoogleBusinessSpider on our own answer of the Business Profile API's reviews.list (the documented structure).

The OAuth and the crawl end to end: tests/e2e/test_google_business.py.
"""
from __future__ import annotations

from datetime import UTC, datetime

from scrapy.http import TextResponse

from spiders.extract import choose_spider, extract_reviews
from spiders.sites.google_business import REVIEWS_PAGE, GoogleBusinessSpider
from tests.spiders._pages import page_bytes

API_URL = "https://mybusiness.googleapis.com/v4/accounts/111/locations/222/reviews?pageSize=50"


def parse(body: bytes = b""):
    spider = GoogleBusinessSpider(url=API_URL)
    response = TextResponse(url=API_URL, body=body or page_bytes("google_business.json"), encoding="utf-8")
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_reviews_stars_reviewer_times_and_the_owners_reply():
    spider, reviews, next_url = parse()
    assert [(r.external_id, r.rating, r.author) for r in reviews] == [
        ("AbFvOqn1", 1, "Maren Holt"), ("AbFvOqn2", 5, "A Google User"), ("AbFvOqn3", None, "Jon"),
    ]
    first = reviews[0]
    assert first.body == "Waited 40 minutes for a cold flat white.\nNever again."
    assert first.published_at == datetime(2026, 11, 30, 18, 4, 51, 512345, tzinfo=UTC)  # nanoseconds cut to µs
    assert first.reply is not None and first.reply.body.startswith("We are sorry, Maren.")
    assert first.reply.published_at == datetime(2026, 12, 1, 10, 15, 30, 500000, tzinfo=UTC)
    assert reviews[1].body == "" and reviews[1].reply is None  # stars only
    assert reviews[2].external_id == "AbFvOqn3"  # no reviewId: the last part of its resource name
    assert all(r.url == REVIEWS_PAGE for r in reviews)
    assert spider.problems == {"google_business/missing_rating": 1, "google_business/bad_date": 1}
    assert next_url == API_URL + "&pageToken=CiAKGjBpMDhOZm"


def test_the_last_page_has_no_next_and_an_error_answer_no_reviews():
    last = page_bytes("google_business.json").replace(b'"nextPageToken": "CiAKGjBpMDhOZm"', b'"x": 1')
    assert parse(last)[2] is None
    _, reviews, next_url = parse(b'{"error": {"code": 401, "status": "UNAUTHENTICATED"}}')
    assert reviews == [] and next_url is None


def test_a_saved_answer_is_recognised_by_content_and_by_host():
    assert choose_spider("", page_bytes("google_business.json")) == "google_business"
    assert choose_spider(API_URL, b"{}") == "google_business"
    assert len(extract_reviews(page_bytes("google_business.json"), API_URL)) == 3
