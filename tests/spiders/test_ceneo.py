"""CeneoSpider on our hand-written Ceneo.pl product page (documented review-card structure)."""
from __future__ import annotations

from datetime import datetime, timezone

from spiders.extract import choose_spider, extract_reviews
from spiders.sites.ceneo import CeneoSpider
from tests.spiders._pages import html_response, page_bytes

PRODUCT_URL = "https://www.ceneo.pl/98765432"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse(name_or_body, url=PRODUCT_URL):
    spider = CeneoSpider(url=url)
    response = html_response(name_or_body, url)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_review_cards():
    spider, reviews, next_url = parse("ceneo.html")

    assert [(r.external_id, r.rating, r.author, r.published_at) for r in reviews] == [
        ("41778201", 1, "Agnieszka", utc(2024, 7, 15, 12, 22, 5)),  # Warsaw summer time, UTC+2
        ("41760033", 4.5, "m...k", utc(2024, 1, 20, 7, 5)),  # winter time, UTC+1
        ("41700950", 5, "Paweł Z.", utc(2023, 11, 2, 20)),
    ]
    assert reviews[0].body == (
        "Po dwóch tygodniach przecieka przy podstawie.\nReklamacja trwa już miesiąc & brak odpowiedzi.\n\n"
        "Zalety: wygląd\n\nWady: jakość wykonania, obsługa reklamacji"
    )
    assert reviews[1].body == "Szybko gotuje, cichy.\n\nFiltr mógłby być lepszy.\n\nZalety: szybkość, cicha praca"
    assert reviews[2].body == "Polecam."
    assert all(r.url == PRODUCT_URL + "#tab=reviews" and r.language == "pl" and r.reply is None for r in reviews)
    assert next_url == PRODUCT_URL + "/opinie-2"
    assert not spider.problems


def test_later_page_links_to_the_product_and_the_last_page_has_no_next():
    last = page_bytes("ceneo.html").replace(b"pagination__item pagination__next", b"pagination__item")
    _, reviews, next_url = parse(last, PRODUCT_URL + "/opinie-2")
    assert reviews[0].url == PRODUCT_URL + "#tab=reviews"
    assert next_url is None
    assert parse("ceneo.html", PRODUCT_URL + "/opinie-2")[2] is None  # a link to itself is not followed


def test_features_without_column_wrappers():
    body = page_bytes("ceneo.html").replace(b'<div class="review-feature__col">', b"").replace(
        b'</div>\n        <div class="review-feature__col">', b""
    )
    _, reviews, _ = parse(body)
    assert reviews[0].body.endswith("Zalety: wygląd\n\nWady: jakość wykonania, obsługa reklamacji")


def test_bad_fields_are_counted_not_fatal():
    body = (
        page_bytes("ceneo.html")
        .replace(b">1/5<", b">bez oceny<")
        .replace(b'datetime="2024-01-20 08:05:00"', b'datetime="wczoraj"')
        .replace(b'data-entry-id="41700950"', b'data-entry-id=" "')
    )
    spider, reviews, _ = parse(body)
    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("41778201", None, utc(2024, 7, 15, 12, 22, 5)), ("41760033", 4.5, None),
    ]
    assert spider.problems == {"ceneo/bad_rating": 1, "ceneo/bad_date": 1, "ceneo/missing_id": 1}

    scaled = page_bytes("ceneo.html").replace(b">4,5/5<", b">8/10<").replace(b">5/5<", b">7/5<")
    spider, reviews, _ = parse(scaled)
    assert [r.rating for r in reviews] == [1, 4, None]
    assert spider.problems == {"ceneo/bad_rating": 1}


def test_auto_detection_by_host_and_by_content():
    assert choose_spider(PRODUCT_URL, b"<html></html>") == "ceneo"
    assert choose_spider("", page_bytes("ceneo.html")) == "ceneo"
    reviews = extract_reviews(page_bytes("ceneo.html"), "")  # the canonical link gives the product URL
    assert [r.external_id for r in reviews] == ["41778201", "41760033", "41700950"]
    assert [r.source for r in reviews] == ["ceneo"] * 3
