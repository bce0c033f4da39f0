"""GoogleMapsSpider on our listugcposts answers (a reply, a page token, short and broken entries) and a real one."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from scrapy.http import Response

from spiders.extract import choose_spider
from spiders.sites.google_maps import GoogleMapsSpider
from tests.spiders._pages import fingerprint, page_bytes

# As the browser's developer tools show it: hl/gl, the place, a page token (copied after scrolling), lowest first.
COPIED_URL = (
    "https://www.google.com/maps/rpc/listugcposts?authuser=0&hl=en&gl=gb&pb=!1m6!1s0x0%3A0xa1b2c3d4e5f60718"
    "!6m4!4m1!1e1!4m1!1e3!2m2!1i10!2sCAESOLD%3D%3D!5m2!1sAbCdEf!7e81!8m5!1b1!2b1!3b1!5b1!7b1!11m0!13m1!1e4"
)
URL = GoogleMapsSpider.normalize_url(COPIED_URL)
PLACE_LINK = "https://www.google.com/maps?cid=11651590505119483672"  # 0xa1b2c3d4e5f60718


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def answer(name: str, url: str = URL) -> Response:
    return Response(url=url, body=page_bytes(name))


def pb(url: str) -> str:
    return parse_qs(urlsplit(url).query)["pb"][0]


def test_the_copied_address_asks_for_the_newest_from_the_first_page():
    assert pb(URL) == (
        "!1m6!1s0x0:0xa1b2c3d4e5f60718!6m4!4m1!1e1!4m1!1e3!2m2!1i10!2s!5m2!1sAbCdEf!7e81!8m5!1b1!2b1!3b1!5b1!7b1"
        "!11m0!13m1!1e2"
    )
    assert parse_qs(urlsplit(URL).query)["hl"] == ["en"]
    assert GoogleMapsSpider.crawl_url(COPIED_URL) == URL
    # a test server's address is asked as given
    assert GoogleMapsSpider.crawl_url("http://127.0.0.1:8000/maps/rpc/listugcposts?pb=!13m1!1e4") == (
        "http://127.0.0.1:8000/maps/rpc/listugcposts?pb=!13m1!1e4")


def test_reviews_with_the_owner_reply_and_what_is_missing_left_empty():
    spider = GoogleMapsSpider(url=URL)
    reviews = list(spider.parse_reviews(answer("google_maps.txt")))

    assert [(r.external_id, r.rating, r.published_at, r.language, r.author) for r in reviews] == [
        ("ChZDSUhNMG9nS0VJQ0FnSUR0ZXN0MDEQAQ", 1, utc(2024, 12, 5, 10, 0, 0), "en", "Dana Ortiz"),
        ("ChZDSUhNMG9nS0VJQ0FnSUR0ZXN0MDIQAQ", 5, utc(2024, 12, 4, 10, 0, 0), "de", "Lukas Weber"),
        ("ChZDSUhNMG9nS0VJQ0FnSUR0ZXN0MDMQAQ", 4, utc(2024, 12, 3, 10, 0, 0), None, "Ana Lima"),
        ("ChZDSUhNMG9nS0VJQ0FnSUR0ZXN0MDQQAQ", 3, utc(2024, 12, 2, 10, 0, 0), "en", None),
    ]
    first = reviews[0]
    assert first.body == "Waited 40 minutes for a cold flat white. Staff shrugged."
    assert first.reply.body.startswith("Sorry Dana, that is not our standard.")
    assert first.reply.published_at == utc(2024, 12, 6, 10, 0, 0)
    assert first.url.startswith("https://www.google.com/maps/reviews/data=!4m8!14m7!1m6!2m5!1sChZDSUhNMG9nS0VJQ0FnSUR0ZXN0MDEQAQ")
    assert reviews[1].reply is None  # the owner's block is there, with no reply in it
    assert reviews[2].body == "" and reviews[2].url == PLACE_LINK  # stars only; no review link: the place's
    assert not spider.problems  # the entries that are no review are skipped, not counted as unreadable


def test_the_next_page_carries_the_answers_token_in_the_pb_page_field():
    spider = GoogleMapsSpider(url=URL)
    next_url = spider.next_page(answer("google_maps.txt"))
    assert "!2m2!1i10!2sCAESY0NBRVFRUEFHRTJfVE9LRU4%3D!5m2" in next_url  # the token's "=" escaped as the page does
    assert pb(next_url) == pb(URL).replace("!2s!5m2", "!2sCAESY0NBRVFRUEFHRTJfVE9LRU4=!5m2")
    request = spider.follow_page(answer("google_maps.txt"), next_url, 2)
    assert request.method == "GET" and request.meta["page"] == 2 and not request.meta.get("unordered")

    page2 = answer("google_maps_page2.txt", next_url)
    assert [(r.external_id, r.published_at) for r in spider.parse_reviews(page2)] == [
        ("ChZDSUhNMG9nS0VJQ0FnSUR0ZXN0MDUQAQ", utc(2024, 12, 1, 10, 0, 0))]
    assert spider.next_page(page2) is None  # d[1] null: the last page


def test_an_address_without_the_order_field_is_read_without_stopping_at_known_reviews():
    url = URL.replace("!13m1!1e2", "")
    spider = GoogleMapsSpider(url=url)
    assert next(spider.first_requests()).meta["unordered"] is True
    no_page_field = GoogleMapsSpider(url=URL.replace("!2m2!1i10!2s", ""))
    assert no_page_field.next_page(answer("google_maps.txt", no_page_field.url)) is None
    assert no_page_field.problems["google_maps/no_page_field_in_pb"] == 1


@pytest.mark.parametrize("body", [
    b")]}'\n[]", b")]}'\n[null,null,null]", b")]}'\n[null,\"tok\",[[[\"id\"]]]]", b")]}'\n{\"a\": 1}", b")]}'\n[",
    b"<html>nope</html>", b")]}'\n[null,null,[[[\"x\",[1],[[9]],[1,\"bad time\"]]]]]",
])
def test_answers_that_are_not_reviews_or_are_broken_give_nothing_or_what_is_there(body):
    spider = GoogleMapsSpider(url=URL)
    for review in spider.parse_reviews(Response(url=URL, body=body)):
        assert review.external_id and (review.rating is None or 1 <= review.rating <= 5)
        assert review.reply is None


def test_auto_detection_by_host_and_by_content():
    assert choose_spider(URL, page_bytes("google_maps.txt")) == "google_maps"
    assert choose_spider("http://127.0.0.1:9/answer", page_bytes("google_maps.txt")) == "google_maps"
    assert choose_spider("https://play.google.com/store/apps/details?id=x", b"") == "google_play"


REAL = [  # id prefix, id hash, published, author hash, text hash (first 20 characters): stand-ins, nothing copied
    ("ChdDSUhNMG9n", "d68fd9a2ce03", utc(2021, 6, 13, 8, 22, 54), "b62767cf2990", "fdc330660176"),
    ("ChZDSUhNMG9n", "cc1059223cdc", utc(2019, 2, 10, 7, 24, 24), "868e2540d086", "2935dd7b4a14"),
    ("ChdDSUhNMG9n", "838cbff9dc50", utc(2023, 12, 25, 3, 44, 48), "c86db068f2aa", "5d3a0f694a10"),
    ("ChZDSUhNMG9n", "b27a9982d083", utc(2024, 2, 25, 2, 37, 48), "c0bb3631c337", "83b46b871437"),
    ("ChdDSUhNMG9n", "71180050fae2", utc(2022, 10, 11, 5, 45, 28), "2113aec7bdbd", "e0781ddf690e"),
    ("ChZDSUhNMG9n", "5cef42bc5677", utc(2018, 5, 28, 22, 57, 57), "68ef3a1bdb8c", "6bd668f3d00e"),
    ("ChZDSUhNMG9n", "cf03cc25ecea", utc(2019, 9, 15, 11, 31, 42), "f16776213320", "29b4fb10e746"),
    ("ChdDSUhNMG9n", "ed672ebca31d", utc(2021, 11, 14, 10, 15, 21), "c75a06676306", "f36168e9e333"),
    ("ChZDSUhNMG9n", "0944dc562a19", utc(2018, 12, 23, 5, 42, 56), "6bd1f631cd2a", "783abf511962"),
    ("ChdDSUhNMG9n", "694b12fdf04a", utc(2021, 1, 2, 14, 47, 58), "0e8947ca0bd8", "cb2c12af0c3d"),
]


@pytest.mark.fixtures
def test_real_2025_answer(shared_fixtures: Path):
    path = shared_fixtures / "pages" / "googlemaps" / "aliepratama__listugcposts-raw-response__id__2025-05.bin"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    body = path.read_bytes()
    url = URL.replace("0xa1b2c3d4e5f60718", "0xc8f1e183fc8e2531").replace("hl=en&gl=gb", "hl=id&gl=id")
    spider = GoogleMapsSpider(url=url)
    response = Response(url=url, body=body)
    reviews = list(spider.parse_reviews(response))

    assert [(r.external_id[:12], fingerprint(r.external_id), r.published_at, fingerprint(r.author),
             fingerprint(r.body[:20])) for r in reviews] == REAL
    assert all(r.rating == 1 for r in reviews)  # the answer was asked lowest rating first
    assert all(r.language == "id" for r in reviews)
    assert all(r.reply is None for r in reviews)  # the owner's block is there, empty: nobody replied
    assert all(r.url.startswith("https://www.google.com/maps/reviews/data=!4m8!14m7!1m6!2m5!1s" + r.external_id)
               for r in reviews)
    assert not spider.problems
    assert choose_spider("http://127.0.0.1:9/raw_response.bin", body) == "google_maps"
    next_url = spider.next_page(response)
    assert pb(next_url).startswith("!1m6!1s0x0:0xc8f1e183fc8e2531!6m4!4m1!1e1!4m1!1e3!2m2!1i10!2sCAESY0NBRVFIaHBF")
