"""GooglePlaySpider on our app page (a later layout) and batch answers, and on a real 2018 app page."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from scrapy.http import HtmlResponse, TextResponse

from spiders.extract import choose_spider
from spiders.sites.google_play import GooglePlaySpider
from tests.spiders._pages import fingerprint, page_bytes

APP_URL = "https://play.google.com/store/apps/details?id=com.acme.orders&hl=en&gl=GB"
BATCH_URL = "https://play.google.com/_/PlayStoreUi/data/batchexecute?rpcids=UsvDTd&hl=en&gl=GB&_reqid=1000&rt=c"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_app_page_reviews_with_the_developer_reply_found_by_shape_not_key():
    spider = GooglePlaySpider(url=APP_URL)
    response = HtmlResponse(url=APP_URL, body=page_bytes("google_play.html"), encoding="utf-8")
    reviews = list(spider.parse_reviews(response))

    assert [(r.external_id, r.rating, r.published_at, r.app_version, r.votes) for r in reviews] == [
        ("gp:AOqpTOtest001", 1, utc(2024, 12, 5, 12, 0), "2.4.1", 12),
        ("gp:AOqpTOtest002", 5, utc(2024, 12, 4, 8, 13, 20), "2.4.1", 3),
        ("gp:AOqpTOtest003", 2, utc(2024, 12, 3, 4, 26, 40), None, 0),
    ]
    first = reviews[0]
    assert first.author == "Tester 1" and first.body.startswith("Crashes every time")
    assert first.reply.body.startswith("Sorry about the crashes!")
    assert first.reply.published_at == utc(2024, 12, 6, 12, 0)
    assert first.url == "https://play.google.com/store/apps/details?id=com.acme.orders&reviewId=gp:AOqpTOtest001"
    assert (reviews[2].title, reviews[2].body) == ("Slow", "Takes ages to load the menu & the map.")
    assert not spider.problems
    # then the newest first, from the batch endpoint, in the page's language and country
    assert spider.next_page(response).startswith("https://play.google.com/_/PlayStoreUi/data/batchexecute?rpcids=UsvDTd&hl=en&gl=GB")


def test_batch_pages_follow_the_token_and_post_what_the_page_posts():
    spider = GooglePlaySpider(url=APP_URL)
    page2 = TextResponse(url=BATCH_URL, body=page_bytes("google_play_batch_page2.txt"), encoding="utf-8")
    reviews = list(spider.parse_reviews(page2))
    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("gp:AOqpTOtest004", 1, utc(2024, 12, 2, 0, 40)), ("gp:AOqpTOtest005", 4, utc(2024, 11, 30, 20, 53, 20)),
    ]
    assert reviews[0].reply.body == "We have refunded the second charge. Sorry!"
    next_url = spider.next_page(page2)
    request = spider.follow_page(page2, next_url, 3)
    assert request.method == "POST"
    f_req = json.loads(parse_qs(request.body.decode())["f.req"][0])
    assert f_req[0][0][0] == "UsvDTd"
    assert json.loads(f_req[0][0][1]) == [None, None, [2, 2, [40, None, "TOKEN-PAGE-3"], None, []], ["com.acme.orders", 7]]

    page3 = TextResponse(url=BATCH_URL, body=page_bytes("google_play_batch_page3.txt"), encoding="utf-8")
    assert [r.external_id for r in spider.parse_reviews(page3)] == ["gp:AOqpTOtest006"]
    assert spider.next_page(page3) is None  # no token: the last page
    assert spider.next_page(page2) is None  # a token seen before: no circle


def test_auto_detection_by_host():
    assert choose_spider(APP_URL, page_bytes("google_play.html")) == "google_play"


def test_not_an_app_page():
    spider = GooglePlaySpider(url=APP_URL)
    page = b"<html><script>AF_initDataCallback({key: 'ds:1', data:[[1,2,3]]});</script></html>"
    assert list(spider.parse_reviews(HtmlResponse(url=APP_URL, body=page))) == []
    broken = TextResponse(url=BATCH_URL, body=b")]}'\n\n12\n[[\"wrb.fr\",", encoding="utf-8")
    assert list(spider.parse_reviews(broken)) == []


@pytest.mark.fixtures
def test_real_2018_app_page(real_pages: Path):
    body = (real_pages / "googleplay" / "market_bot__app-com.hasbro.mlpcoreAPPSTORE__2018-05.html").read_bytes()
    url = "https://play.google.com/store/apps/details?id=com.hasbro.mlpcoreAPPSTORE"
    spider = GooglePlaySpider(url=url)
    response = HtmlResponse(url=url, body=body, encoding="utf-8")
    reviews = list(spider.parse_reviews(response))

    assert len(reviews) == 40
    assert [r.rating for r in reviews] == [
        3, 5, 2, 3, 5, 3, 4, 3, 2, 1, 1, 3, 1, 2, 2, 1, 3, 1, 3, 1, 5, 2, 1, 3, 5, 5, 5, 3, 5, 2, 1, 5, 1, 1, 5, 5, 3,
        5, 5, 4,
    ]
    assert [r.published_at for r in reviews[:3]] == [
        utc(2017, 8, 12, 16, 43, 22), utc(2018, 4, 16, 13, 38, 35), utc(2016, 9, 6, 13, 36, 8),
    ]
    assert reviews[-1].published_at == utc(2016, 12, 22, 19, 42, 4)
    assert all(r.app_version == "1.0.0" for r in reviews)
    assert all(r.reply is None for r in reviews)  # no developer replied on this page
    assert sum(r.title is not None for r in reviews) == 13  # the 2018 layout had titles
    assert reviews[0].external_id.startswith("gp:AOqpTOGalJe32BXw")
    assert fingerprint(reviews[0].author) == "7fbb99917e82"  # names and words stand in as hashes, not copied
    assert reviews[0].votes == 871
    assert fingerprint(reviews[0].body[:40]) == "196d8a3c4133"
    assert fingerprint(reviews[-1].body) == "12052dee8c8a"
    assert fingerprint(reviews[2].title) == "7dbbecdb0309"
    assert len({r.external_id for r in reviews}) == 40
    assert not spider.problems
    assert choose_spider(url, body) == "google_play"
    assert spider.next_page(response).startswith("https://play.google.com/_/PlayStoreUi/data/batchexecute?")
