"""BbbSpider on our hand-written answers of BBB's review and complaint endpoints and a profile page's state."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from scrapy.http import TextResponse

from spiders.extract import choose_spider, extract_reviews
from spiders.sites.bbb import BbbSpider
from tests.spiders._pages import html_response, page_bytes

API = "https://www.bbb.org/api/businessprofile/customerreviews"
REVIEWS_URL = f"{API}?page=1&pageSize=3&businessId=1000123456&bbbId=1296&sort=reviewDate%20desc"
COMPLAINTS_URL = "https://www.bbb.org/api/businessprofile/complaints?page=2&pageSize=10&businessId=1000123456&bbbId=1296"
PROFILE_URL = (
    "https://www.bbb.org/us/or/portland/profile/roofing-contractors/bramblewood-roofing-llc-1296-1000123456/customer-reviews"
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse_json(name_or_body, url=REVIEWS_URL):
    body = name_or_body if isinstance(name_or_body, bytes) else page_bytes(name_or_body)
    spider = BbbSpider(url=url)
    response = TextResponse(url=url, body=body, encoding="utf-8")
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def parse_html(name_or_body, url=PROFILE_URL):
    spider = BbbSpider(url=url)
    response = html_response(name_or_body, url)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_customer_reviews_endpoint():
    spider, reviews, next_url = parse_json("bbb_customer_reviews.json")

    assert [(r.external_id, r.rating, r.author, r.published_at) for r in reviews] == [
        ("8f2c41d0-5b7e-4c1a-9e33-2a6d0c9b7e11", 1, "Harriet W", utc(2024, 3, 15, 14, 22, 5)),
        ("3a9e77c2-0d41-48f5-b6a1-7c2e5f8d9a04", 5, "Dev P", utc(2024, 3, 2)),  # {day, month, year}
        ("c47b1e90-2f6d-4a8b-8c05-91d3e6a2f7b8", 4, "Lou M", utc(2024, 2, 20)),  # "02/20/2024", stars as text
    ]
    harriet = reviews[0]
    assert harriet.body == "They took a $900 deposit & never came back to finish the gutters.\nThree calls, no answer."
    assert harriet.reply.body == (
        "Ms. W, our crew lead was out sick. We have rescheduled for Monday and refunded the travel fee."
    )
    assert harriet.reply.published_at == utc(2024, 3, 18, 9)
    assert reviews[1].reply is None and reviews[2].reply is None
    assert all(r.url == REVIEWS_URL and r.title is None and len(r.snippet_hash) == 64 for r in reviews)
    assert next_url == REVIEWS_URL.replace("page=1&", "page=2&")  # page 1 of 3, other parameters kept
    assert not spider.problems


def test_complaints_endpoint_on_its_last_page():
    spider, reviews, next_url = parse_json("bbb_complaints.json", COMPLAINTS_URL)

    assert [(r.external_id, r.title, r.rating, r.published_at) for r in reviews] == [
        ("complaint-20931877", "Billing/Collection Issues", None, utc(2024, 1, 9)),
        ("complaint-20877310", "Product Issues", None, utc(2023, 12, 1)),
    ]
    assert reviews[0].body == "I was billed twice for the same inspection.\n\nStatus: Resolved"
    assert (reviews[0].reply.body, reviews[0].reply.published_at) == ("The second charge was reversed on 1/12.", utc(2024, 1, 12))
    assert reviews[1].body == "Shingles blew off in the first storm.\n\nStatus: Unanswered" and reviews[1].reply is None
    assert next_url is None  # page 2 of 2
    assert not spider.problems  # complaints have no stars: not a missing rating


def test_profile_page_preloaded_state():
    spider, reviews, next_url = parse_html("bbb_profile.html")

    assert [(r.external_id, r.rating, r.author, r.published_at) for r in reviews] == [
        ("e1d2c3b4-a596-4877-8899-aabbccddeeff", 2, "Nora K", utc(2024, 2, 28)),
        ("0f9e8d7c-6b5a-4948-3726-150413021100", 5, "Sam Ó", utc(2024, 2, 14)),
        ("complaint-20931877", None, None, utc(2024, 1, 9)),
    ]
    nora = reviews[0]
    assert nora.body == "Leak came back after a month.\nSecond visit fixed it, but they charged for it."
    assert (nora.reply.body, nora.reply.published_at) == (
        "Nora, that second visit should have been free. A refund is on its way.", utc(2024, 3, 1),
    )
    assert reviews[1].body == "Honest crew: they told me I didn't need a new roof yet."
    assert nora.url == PROFILE_URL
    assert next_url is None
    assert not spider.problems


def test_profile_page_with_more_pages():
    body = page_bytes("bbb_profile.html").replace(b'"totalCount":2,"totalPages":1', b'"totalCount":14,"totalPages":2')
    assert parse_html(body)[2] == PROFILE_URL + "?page=2"


def test_bad_fields_are_counted_not_fatal():
    data = json.loads(page_bytes("bbb_customer_reviews.json"))
    data["items"][0]["reviewStarRating"] = 9
    data["items"][1]["date"] = {"day": "31", "month": "02", "year": "2024"}
    data["items"][2]["reviewStarRating"] = None
    data["items"].append({"id": None, "reviewStarRating": 3, "text": "no id"})
    data["items"].append({"id": "x1", "reviewStarRating": 3, "text": "odd", "date": ["2024"], "businessResponse": 7})
    data["items"].append({"id": "x2", "reviewStarRating": 3, "text": "broken", "displayName": {"first": "A"}})
    spider, reviews, _ = parse_json(json.dumps(data).encode())

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("8f2c41d0-5b7e-4c1a-9e33-2a6d0c9b7e11", None, utc(2024, 3, 15, 14, 22, 5)),
        ("3a9e77c2-0d41-48f5-b6a1-7c2e5f8d9a04", 5, None),
        ("c47b1e90-2f6d-4a8b-8c05-91d3e6a2f7b8", None, utc(2024, 2, 20)),
        ("x1", 3, None),
        ("x2", 3, None),
    ]
    assert reviews[3].reply is None
    assert reviews[4].author is None  # not text: left out, not printed as a dict
    assert spider.problems == {"bbb/bad_rating": 1, "bbb/bad_date": 3, "bbb/missing_rating": 1, "bbb/missing_id": 1}


def test_not_bbb_data():
    assert parse_json(b'{"items": [{"id": 1}]}')[1:] == ([], None)
    assert parse_json(b'{"reviews": []}')[1:] == ([], None)
    assert parse_html(b"<html><script>window.__PRELOADED_STATE__ = {broken</script></html>")[1:] == ([], None)
    assert parse_html(b"<html><body>BBB</body></html>")[1:] == ([], None)


def test_auto_detection_by_host_and_by_content():
    assert choose_spider(REVIEWS_URL, b"{}") == "bbb"
    assert choose_spider("", page_bytes("bbb_customer_reviews.json")) == "bbb"
    assert choose_spider("", page_bytes("bbb_complaints.json")) == "bbb"
    assert choose_spider("", page_bytes("bbb_profile.html")) == "bbb"
    reviews = extract_reviews(page_bytes("bbb_profile.html"), "")  # the canonical link gives the profile URL
    assert [r.source for r in reviews] == ["bbb"] * 3
    assert reviews[0].url == PROFILE_URL
