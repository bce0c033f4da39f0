"""TrustpilotSpider on our hand-written pages (every layout) and on real saved Trustpilot pages."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from spiders.extract import extract_reviews
from spiders.sites.trustpilot import TrustpilotSpider
from tests.spiders._pages import fingerprint, html_response, page_bytes

BIZ_URL = "https://www.trustpilot.com/review/nordlys-bikes.example"
NEXT_DATA = re.compile(rb'<script id="__NEXT_DATA__".*?</script>', re.S)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse(name_or_body, url=BIZ_URL):
    spider = TrustpilotSpider(url=url)
    response = html_response(name_or_body, url)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_reads_the_pages_own_reviews_from_next_data():
    spider, reviews, _ = parse("trustpilot.html")

    assert [r.external_id for r in reviews] == [
        "65f1a2b3c4d5e6f708192a3b", "65e0b1c2d3e4f5061728394a", "65d9c0b1a2f3e4d5c6b7a898",
    ]  # the relevant-reviews block (one duplicate, one other review) is not part of the page's list
    first = reviews[0]
    assert first.url == "https://www.trustpilot.com/reviews/65f1a2b3c4d5e6f708192a3b"
    assert first.rating == 1
    assert first.title == "Wheel arrived bent"
    assert first.author == "Maren Holt"
    assert first.language == "en"
    assert first.published_at == utc(2025, 3, 14, 9, 12, 45)
    assert first.body == "The front wheel arrived bent and the box was torn.\nSupport asked for photos & then went quiet for a week."
    assert first.reply.body.startswith("Hi Maren,\n\nWe are sorry about the wheel.")
    assert first.reply.published_at == utc(2025, 3, 15, 8)
    assert reviews[1].reply is None and reviews[1].language == "da"
    assert reviews[2].body == "Rides well for the price (< 900 EUR).\n\nTook 3 emails to get an invoice."
    assert all(r.snippet_hash and len(r.snippet_hash) == 64 for r in reviews)
    assert not spider.problems


def test_card_fallback_gives_the_same_reviews_as_the_json():
    _, from_json, _ = parse("trustpilot.html")
    _, from_cards, next_url = parse(NEXT_DATA.sub(b"", page_bytes("trustpilot.html")))

    assert [r.external_id for r in from_cards] == [r.external_id for r in from_json]
    for card, data in zip(from_cards, from_json):
        assert (card.rating, card.title, card.author, card.published_at) == (
            data.rating, data.title, data.author, data.published_at
        )
        assert card.body == data.body
        assert (card.reply and (card.reply.body, card.reply.published_at)) == (
            data.reply and (data.reply.body, data.reply.published_at)
        )
    assert next_url == "https://www.trustpilot.com/review/nordlys-bikes.example?page=2"


def test_2024_cards_without_data_script():
    url = "https://www.trustpilot.com/review/harbourtea.example"
    _, reviews, next_url = parse("trustpilot_2024_cards.html", url)

    assert [(r.external_id, r.rating) for r in reviews] == [
        ("66589a0b1c2d3e4f50617283", 4), ("6655b0c1d2e3f40516273849", 1),
    ]
    elise = reviews[0]
    assert elise.author == "Élise Moreau"  # a source line break inside the name is just a space
    assert elise.title == "Thé excellent, livraison lente"
    assert elise.body == "Le thé est excellent.\nLa livraison a pris dix jours."
    assert elise.language == "fr"
    assert elise.published_at == utc(2024, 5, 30, 18, 20)
    assert elise.reply.body == "Merci Élise,\n\nnous avons changé de transporteur."
    assert elise.reply.published_at == utc(2024, 5, 31, 7)
    assert reviews[1].reply is None
    assert next_url == "https://www.trustpilot.com/review/harbourtea.example?languages=all&page=2"


def test_pre_2019_card_layout():
    _, reviews, next_url = parse("trustpilot_2016_card.html", "https://www.trustpilot.com/review/planner.example")

    (review,) = reviews
    assert review.external_id == "5712ab340000ff000a1b2c3d"
    assert review.rating == 2
    assert review.author == "Dana Whitfield"
    assert review.title == "Invoices & exports are clumsy"
    assert review.published_at == utc(2016, 4, 16, 18, 15)
    assert review.body == "We've used the planner for a year.\nExports to CSV drop the time zone.\n\nSupport is friendly but slow."
    assert next_url is None


def test_last_page_has_no_next_page():
    _, reviews, next_url = parse("trustpilot_last_page.html", BIZ_URL + "?page=3")

    assert [r.external_id for r in reviews] == ["64c8a1b2c3d4e5f60718293a", "6467f0e1d2c3b4a596877869"]
    assert next_url is None


def test_next_page_from_json_pagination_when_the_link_is_missing():
    body = re.sub(rb"<nav .*?</nav>", b"", page_bytes("trustpilot.html"), flags=re.S)
    _, _, next_url = parse(body, BIZ_URL + "?languages=all")
    assert next_url == BIZ_URL + "?languages=all&page=2"

    last = re.sub(rb"<nav .*?</nav>", b"", page_bytes("trustpilot_last_page.html"), flags=re.S)
    assert parse(last, BIZ_URL + "?page=3")[2] is None


def test_review_url_follows_the_country_host():
    _, reviews, _ = parse("trustpilot.html", "https://dk.trustpilot.com/review/nordlys-bikes.example")
    assert reviews[0].url == "https://dk.trustpilot.com/reviews/65f1a2b3c4d5e6f708192a3b"


def test_one_bad_review_is_counted_not_fatal():
    body = page_bytes("trustpilot.html").replace(
        b'"publishedDate":"2025-03-02T17:40:00.000Z"', b'"publishedDate":"yesterday"', 1
    ).replace(b'"id":"65d9c0b1a2f3e4d5c6b7a898"', b'"id":null', 1)
    spider, reviews, _ = parse(body)

    assert [r.external_id for r in reviews] == ["65f1a2b3c4d5e6f708192a3b", "65e0b1c2d3e4f5061728394a"]
    assert reviews[1].published_at is None
    assert spider.problems == {"trustpilot/bad_date": 1, "trustpilot/missing_id": 1}


def test_broken_data_script_falls_back_to_cards():
    body = page_bytes("trustpilot.html").replace(b'{"props":{"pageProps":', b'{"props":{"pageProps":<<', 1)
    _, reviews, _ = parse(body)
    assert [r.external_id for r in reviews][:1] == ["65f1a2b3c4d5e6f708192a3b"]
    assert len(reviews) == 3


# --- real saved pages (../shared/fixtures) ---------------------------------------------------------------------

REAL = {
    # file: (count, replies, first (id, rating, published), last (id, rating, published))
    "fakepilot__beautytheshop.com__2024-06.html": (
        20, 18,
        ("66685a58c62d2f2148b5f054", 5, utc(2024, 6, 11, 16, 8, 24)),
        ("6662bb550648d7572774d7a7", 5, utc(2024, 6, 7, 9, 48, 37)),
    ),
    "fakepilot__twenix.es__2025-05.html": (
        20, 15,
        ("6814efba01eba776fc92357f", 5, utc(2025, 5, 2, 18, 15, 54)),
        ("664c6516d6f94d4bd7491122", 5, utc(2024, 5, 21, 11, 10, 46)),
    ),
    "fakepilot__www.burgerking.dk__2024-06.html": (
        20, 0,
        ("667498c610cb1b1553fc3a1f", 5, utc(2024, 6, 20, 23, 1, 58)),
        ("66661043629166c79c2edc72", 1, utc(2024, 6, 9, 22, 27, 47)),
    ),
    "fakepilot__www.granada.no__2025-05.html": (
        1, 0,
        ("5faa6d8c5e693f0a8422eca0", 5, utc(2020, 11, 10, 10, 38, 4)),
        ("5faa6d8c5e693f0a8422eca0", 5, utc(2020, 11, 10, 10, 38, 4)),
    ),
}


@pytest.mark.fixtures
@pytest.mark.parametrize("filename", sorted(REAL))
def test_real_page_yields_exactly_its_own_reviews(real_pages: Path, filename: str):
    count, replies, first, last = REAL[filename]
    business = filename.split("__")[1]
    reviews = extract_reviews(
        (real_pages / "trustpilot" / filename).read_bytes(), f"https://www.trustpilot.com/review/{business}"
    )

    assert len(reviews) == count
    assert len({r.external_id for r in reviews}) == count
    assert sum(r.reply is not None for r in reviews) == replies
    for expected, review in ((first, reviews[0]), (last, reviews[-1])):
        assert (review.external_id, review.rating, review.published_at) == expected
        assert review.url == f"https://www.trustpilot.com/reviews/{review.external_id}"
    for review in reviews:
        assert re.fullmatch(r"[0-9a-f]{24}", review.external_id)
        assert review.rating in (1, 2, 3, 4, 5)
        assert review.published_at.tzinfo is timezone.utc
        assert review.body and review.author and review.language
        if review.reply:
            assert review.reply.body and review.reply.published_at.tzinfo is timezone.utc


@pytest.mark.fixtures
def test_real_twenix_ignores_relevant_reviews_and_pages_on(real_pages: Path):
    body = (real_pages / "trustpilot" / "fakepilot__twenix.es__2025-05.html").read_bytes()
    url = "https://www.trustpilot.com/review/twenix.es"
    spider = TrustpilotSpider(url=url)
    response = html_response(body, url)
    reviews = list(spider.parse_reviews(response))

    assert len(response.css("article[data-service-review-card-paper]")) == 24  # the trap: 4 teaser cards
    assert [r.rating for r in reviews] == [5, 5, 5, 1, 4, 5, 1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 1, 5]
    assert [i for i, r in enumerate(reviews) if r.reply] == [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 16, 17, 18, 19]
    assert reviews[-1].reply.published_at == utc(2024, 6, 4, 10, 32, 18)
    assert spider.next_page(response) == "https://www.trustpilot.com/review/twenix.es?page=2"
    # Without the data script the cards give the same 20 reviews, not the 24 cards.
    cards = list(spider.parse_reviews(html_response(NEXT_DATA.sub(b"", body), url)))
    assert [r.external_id for r in cards] == [r.external_id for r in reviews]
    assert [bool(r.reply) for r in cards] == [bool(r.reply) for r in reviews]
    assert not spider.problems


@pytest.mark.fixtures
def test_real_pagination(real_pages: Path):
    def next_of(filename: str, business: str) -> str | None:
        url = f"https://www.trustpilot.com/review/{business}"
        response = html_response((real_pages / "trustpilot" / filename).read_bytes(), url)
        return TrustpilotSpider(url=url).next_page(response)

    assert next_of("fakepilot__www.granada.no__2025-05.html", "www.granada.no") is None
    assert next_of("fakepilot__www.burgerking.dk__2024-06.html", "www.burgerking.dk") == (
        "https://www.trustpilot.com/review/www.burgerking.dk?languages=all&page=2"
    )


@pytest.mark.fixtures
def test_real_pre_2019_fragment(real_pages: Path):
    body = (real_pages / "trustpilot" / "fragments" / "johncosch__hubspot-review-card__2016-layout.html").read_bytes()
    (review,) = extract_reviews(body, "https://www.trustpilot.com/review/www.hubspot.com")
    assert review.external_id == "570bf3ad0000ff00094f4ac6"
    assert review.rating == 3
    assert review.published_at == utc(2016, 4, 11, 18, 57, 49)
    assert fingerprint(review.author) == "d257ecc36470"


def test_through_the_base_parse_with_a_crawler():
    """The Scrapy path: items carry the source name, the next page is requested, known pages stop the crawl."""
    import scrapy
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(TrustpilotSpider)
    crawler.stats.open_spider()
    spider = TrustpilotSpider.from_crawler(crawler, url=BIZ_URL, source="nordlys-tp")

    def fetched(page: str, status: int = 200):
        return html_response(page, BIZ_URL).replace(status=status, request=scrapy.Request(BIZ_URL, meta={"page": 1}))

    output = list(spider.parse(fetched("trustpilot.html")))

    assert [o.source for o in output if not isinstance(o, scrapy.Request)] == ["nordlys-tp"] * 3
    (request,) = [o for o in output if isinstance(o, scrapy.Request)]
    assert request.url == BIZ_URL + "?page=2" and request.meta["page"] == 2

    known = TrustpilotSpider.from_crawler(crawler, url=BIZ_URL, known_ids=[
        "65f1a2b3c4d5e6f708192a3b", "65e0b1c2d3e4f5061728394a", "65d9c0b1a2f3e4d5c6b7a898",
    ])
    assert not [o for o in known.parse(fetched("trustpilot.html")) if isinstance(o, scrapy.Request)]

    assert list(spider.parse(fetched("blocked_perimeterx.html", status=403))) == []
    assert crawler.stats.get_value("repwatch/blocked") == "perimeterx"


def test_next_data_api_json():
    """The `/_next/data/<build>/review/<domain>.json?page=N` answer: same review objects, pagination in filters."""
    url = "https://www.trustpilot.com/_next/data/businessunitprofile-consumersite-2025.5.1/review/nordlys-bikes.example.json?page=2"
    from scrapy.http import TextResponse

    spider = TrustpilotSpider(url=url)
    response = TextResponse(url=url, body=page_bytes("trustpilot_next_data_api.json"), encoding="utf-8")
    reviews = list(spider.parse_reviews(response))

    assert [(r.external_id, r.rating) for r in reviews] == [("65c4d3e2f1a0b9c8d7e6f504", 4), ("65b3c2d1e0f9a8b7c6d5e403", 2)]
    assert reviews[0].reply.body == "Obrigado Rui!" and reviews[1].reply is None
    assert reviews[0].url == "https://www.trustpilot.com/reviews/65c4d3e2f1a0b9c8d7e6f504"
    assert spider.next_page(response) == url.replace("page=2", "page=3")
    assert [r.external_id for r in extract_reviews(page_bytes("trustpilot_next_data_api.json"), url)] == [
        r.external_id for r in reviews
    ]


@pytest.mark.fixtures
def test_real_next_data_api_reviews(real_pages: Path):
    body = (real_pages / "trustpilot" / "json" / "scrapfly__trustpilot_next-data-api_reviews__2023-12.json").read_bytes()
    reviews = extract_reviews(body, "https://www.trustpilot.com/review/www.bhphotovideo.com")

    assert len(reviews) == 60 and len({r.external_id for r in reviews}) == 60
    assert (reviews[0].external_id, reviews[0].rating, reviews[0].published_at, fingerprint(reviews[0].author)) == (
        "65718f1ba9549dd90f396b4a", 5, utc(2023, 12, 7, 11, 23, 40), "c3ef22502fa5"
    )
    assert fingerprint(reviews[0].body) == "d3fc78926675" and "\n\n" in reviews[0].body


def test_next_page_keeps_language_and_sort():
    _, _, next_url = parse("trustpilot.html", BIZ_URL + "?languages=all&sort=recency")
    assert next_url == BIZ_URL + "?page=2&languages=all&sort=recency"
