"""CeneoSpider on our hand-written Ceneo.pl product page (documented review-card structure)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from spiders.extract import choose_spider, extract_reviews
from spiders.sites.ceneo import CeneoSpider
from tests.spiders._pages import fingerprint, html_response, page_bytes

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


@pytest.mark.fixtures
def test_the_real_review_card_reads_with_every_field(real_pages: Path):
    """The one real Ceneo card we have (a 2023 browser DOM inside a JS template literal): id, author, score, the
    written date to the second (Warsaw winter time, UTC+1), text and pros; its comment box is not a second review."""
    script = (real_pages / "ceneo" / "fragments" / "kcholew4__single-review-card-dom__2023.js").read_text("utf-8")
    card = script.split("`")[1].encode()
    url = "https://www.ceneo.pl/138638987"
    assert choose_spider(url, card) == choose_spider("", card) == "ceneo"
    [review] = extract_reviews(card, url, spider="ceneo")
    assert (review.external_id, review.rating, review.published_at) == ("16890757", 5, utc(2022, 12, 16, 10, 15, 13))
    assert fingerprint(review.author) == "d58bd50b0507"
    text, _, pros = review.body.partition("\n\nZalety: ")
    assert fingerprint(text) == "4d3424bcde76" and len(text) > 400
    assert len(pros.split(", ")) == 3 and "Wady" not in review.body
    assert (review.url, review.language, review.reply) == (url + "#tab=reviews", "pl", None)
