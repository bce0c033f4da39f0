"""FeedSpider on our hand-written feeds: Google Alerts (Atom), an App Store review feed (Atom + im:rating), RSS 2.0."""
from __future__ import annotations

from datetime import datetime, timezone

from scrapy.http import HtmlResponse, TextResponse, XmlResponse

from spiders.extract import choose_spider, extract_reviews
from spiders.generic.feed import FeedSpider
from tests.spiders._pages import page_bytes

ALERTS_URL = "https://www.google.com/alerts/feeds/04512345678901234567/1234567890123456789"
APP_STORE_URL = "https://itunes.apple.com/us/rss/customerreviews/id=1555000111/sortBy=mostRecent/xml"
RSS_URL = "https://copper-kettle.example/guestbook.rss"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse(name_or_body, url, response_class=XmlResponse):
    body = name_or_body if isinstance(name_or_body, bytes) else page_bytes(name_or_body)
    spider = FeedSpider(url=url)
    response = response_class(url=url, body=body)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_google_alerts_feed():
    spider, reviews, next_url = parse("feed_google_alerts.xml", ALERTS_URL)

    assert [(r.external_id, r.published_at, r.rating, r.author) for r in reviews] == [
        ("tag:google.com,2013:googlealerts/feed:9876543210987654321", utc(2024, 6, 10, 7, 58, 12), None, None),
        ("tag:google.com,2013:googlealerts/feed:1122334455667788990", utc(2024, 6, 9, 23, 30), None, None),
    ]
    fined = reviews[0]
    assert fined.title == "Bramblewood Roofing fined over unfinished jobs"
    assert fined.body == "The state board fined Bramblewood Roofing after 14 complaints & two unfinished roofs ..."
    assert fined.url == "https://portland-ledger.example/news/2024/06/roofer-fined"  # not through google.com/url
    assert reviews[1].url == "https://pdx-homes.example/best-roofers"
    assert next_url is None
    assert not spider.problems


def test_app_store_review_feed():
    spider, reviews, next_url = parse("feed_app_store.xml", APP_STORE_URL)

    # The first entry describes the app itself: skipped.
    assert [(r.external_id, r.rating, r.author, r.published_at, r.title) for r in reviews] == [
        ("10987654321", 1, "squatqueen88", utc(2024, 5, 20, 5, 41, 7), "Lost three months of logs"),
        ("10987650000", 5, "Ollie R", utc(2024, 5, 18, 16, 5), "Simple and does the job"),
    ]
    assert reviews[0].body == 'Updated to 4.2 and every workout before March is gone.\nSupport says "reinstall". No thanks.'
    assert reviews[1].body == "Timer and plate math are all I need."
    assert reviews[0].url == "https://itunes.apple.com/us/review?id=1555000111&type=Purple%20Software"
    assert reviews[0].language == "en"
    assert next_url == (
        "https://itunes.apple.com/us/rss/customerreviews/page=2/id=1555000111/sortby=mostrecent/xml"
        "?urlDesc=/customerreviews/id=1555000111/sortBy=mostRecent/xml"
    )
    assert not spider.problems


def test_rss_feed_with_a_relative_link_and_no_guid():
    spider, reviews, next_url = parse("feed_rss.xml", RSS_URL)

    assert [(r.external_id, r.published_at, r.author, r.language) for r in reviews] == [
        ("guestbook-412", utc(2024, 6, 9, 8, 30), "Marta P.", "en"),
        ("https://copper-kettle.example/guestbook/409", utc(2024, 6, 1, 8), None, "en"),  # the link is its id
    ]
    assert reviews[0].body == "Third visit, third cold coffee.\n\nStaff were kind though."
    assert reviews[0].url == "https://copper-kettle.example/guestbook/412"
    assert reviews[1].body == "Fluffy & quick." and reviews[1].rating is None
    assert next_url is None
    assert not spider.problems


def test_entry_without_id_or_link_gets_a_stable_content_id():
    body = page_bytes("feed_rss.xml").replace(b"<link>/guestbook/409</link>", b"")
    _, first, _ = parse(body, RSS_URL)
    _, again, _ = parse(body, RSS_URL)
    assert first[1].external_id.startswith("sha256:") and first[1].external_id == again[1].external_id
    assert first[1].url == RSS_URL


def test_bad_ratings_and_dates_are_counted():
    body = (
        page_bytes("feed_app_store.xml")
        .replace(b"<im:rating>5</im:rating>", b"<im:rating>five</im:rating>")
        .replace(b"<updated>2024-05-19T22:41:07-07:00</updated>", b"<updated>yesterday</updated>")
    )
    spider, reviews, _ = parse(body, APP_STORE_URL)
    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("10987654321", 1, None), ("10987650000", None, utc(2024, 5, 18, 16, 5)),
    ]
    assert spider.problems == {"feed/bad_rating": 1, "feed/bad_date": 1}


def test_what_is_not_a_feed_yields_nothing():
    html = b"<html><body><feed>not a feed</feed></body></html>"
    assert parse(html, RSS_URL, HtmlResponse)[1:] == ([], None)
    assert parse(b'{"items": []}', RSS_URL, TextResponse)[1:] == ([], None)
    assert parse(b"<?xml version='1.0'?><rss><channel><item>", RSS_URL)[1:] == ([], None)  # truncated


def test_auto_detection_by_content():
    for name in ("feed_google_alerts.xml", "feed_app_store.xml", "feed_rss.xml"):
        assert choose_spider("", page_bytes(name)) == "feed", name
    assert FeedSpider.sniff(HtmlResponse(url=RSS_URL, body=b"<html><body>rss</body></html>")) is False
    # extract builds an HtmlResponse for anything that is not JSON: the feed is still read as XML (on Apple's host
    # by the app_store kind, which also reads the app version).
    reviews = extract_reviews(page_bytes("feed_app_store.xml"), APP_STORE_URL)
    assert [(r.external_id, r.rating, r.source) for r in reviews] == [
        ("10987654321", 1, "app_store"), ("10987650000", 5, "app_store")]
    reviews = extract_reviews(page_bytes("feed_app_store.xml"), APP_STORE_URL, spider="feed")
    assert [(r.external_id, r.rating, r.source) for r in reviews] == [("10987654321", 1, "feed"), ("10987650000", 5, "feed")]


def test_feed_sniffing_survives_a_page_that_opens_with_a_long_run_of_whitespace():
    # `(?:\s+|...)*` made this exponential: an ordinary page padded with blank space hung `--spider auto`.
    from spiders.generic.feed import _is_feed

    assert not _is_feed(b" \n" * 4000 + b"<html><body>not a feed</body></html>")
    assert _is_feed(b"\n  \t" * 500 + b'<?xml version="1.0"?>\n<!-- c -->\n<rss version="2.0"><channel/></rss>')
