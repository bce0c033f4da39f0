"""SkroutzSpider on our hand-written API answers and on real saved Skroutz API v3 answers."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from scrapy.http import TextResponse

from spiders.extract import choose_spider, extract_reviews
from spiders.sites.skroutz import SkroutzSpider
from tests.spiders._pages import fingerprint, page_bytes

SHOP_URL = "https://api.skroutz.gr/shops/4521/reviews"
SKU_URL = "https://api.skroutz.gr/skus/31337/reviews?page=2&per=2"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse(name_or_body, url=SHOP_URL):
    body = name_or_body if isinstance(name_or_body, bytes) else page_bytes(name_or_body)
    spider = SkroutzSpider(url=url)
    response = TextResponse(url=url, body=body, encoding="utf-8")
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_shop_reviews_with_reasons_and_reply():
    spider, reviews, next_url = parse("skroutz_shop_reviews.json")

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("7300112", 1, utc(2024, 11, 5, 17, 12, 40)),  # +02:00 → UTC
        ("7299870", 5, utc(2024, 11, 2, 7, 5)),
        ("7297001", 4, utc(2024, 10, 28, 19, 40, 15)),
    ]
    late = reviews[0]
    assert late.body == (
        "Η παραγγελία άργησε δώδεκα μέρες.\nΚανείς δεν απαντούσε στο τηλέφωνο.\n\n"
        "Λόγοι: Καθυστέρηση αποστολής; Προβληματική επικοινωνία"
    )
    assert late.reply.body == "Λυπούμαστε πολύ για την καθυστέρηση. Σας επιστρέψαμε τα μεταφορικά."
    assert late.reply.published_at is None
    assert late.url == "https://www.skroutz.gr/shop/4521" and late.author is None
    assert reviews[1].body.endswith("& καλά συσκευασμένο.\n\nΛόγοι: Έγκαιρη παραλαβή; Προσεγμένη συσκευασία")
    assert reviews[2].body == "Καλό κατάστημα." and reviews[2].reply is None
    assert next_url == SHOP_URL + "?page=2"
    assert not spider.problems


def test_product_reviews_with_sentiments_on_the_last_page():
    spider, reviews, next_url = parse("skroutz_sku_reviews.json", SKU_URL)

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("880441", 2, utc(2024, 9, 14, 8, 22, 33)), ("879002", 5, utc(2024, 9, 1, 5)),
    ]
    assert reviews[0].body == (
        "Η μπαταρία κρατάει μισή μέρα. Η οθόνη είναι όμορφη.\n\n"
        "Θετικά: Σχεδίαση\n\nΜέτρια: Οθόνη\n\nΑρνητικά: Μπαταρία"
    )
    assert reviews[0].url == "https://www.skroutz.gr/s/31337"
    assert all(r.reply is None for r in reviews)
    assert next_url is None  # page 2 of 2
    assert not spider.problems


def test_next_page_keeps_the_other_parameters():
    _, _, next_url = parse("skroutz_shop_reviews.json", SHOP_URL + "?per=3&page=1")
    assert next_url == SHOP_URL + "?per=3&page=2"


def test_reply_object_and_bad_fields_are_counted():
    data = json.loads(page_bytes("skroutz_shop_reviews.json"))
    data["reviews"][0]["shop_reply"] = {"text": "Σας καλέσαμε.", "created_at": "2024-11-06T10:00:00+02:00"}
    data["reviews"][1]["rating"] = 0
    data["reviews"][2]["created_at"] = "χθες"
    data["reviews"].append({"id": None, "rating": 3, "review": "χωρίς id"})
    data["reviews"].append({"id": 1, "rating": 3, "review": "x", "sentiments": ["not", "an", "object"]})
    spider, reviews, _ = parse(json.dumps(data).encode())

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("7300112", 1, utc(2024, 11, 5, 17, 12, 40)), ("7299870", None, utc(2024, 11, 2, 7, 5)), ("7297001", 4, None),
    ]
    assert (reviews[0].reply.body, reviews[0].reply.published_at) == ("Σας καλέσαμε.", utc(2024, 11, 6, 8))
    assert spider.problems == {
        "skroutz/bad_rating": 1, "skroutz/bad_date": 1, "skroutz/missing_id": 1, "skroutz/unreadable_review": 1,
    }


def test_not_an_api_answer():
    assert parse(b'{"reviews": "none"}')[1:] == ([], None)
    assert parse(b"<html><body>Skroutz</body></html>")[1:] == ([], None)


def test_auto_detection_by_host_and_by_content():
    assert choose_spider(SHOP_URL, b"{}") == "skroutz"
    assert choose_spider("", page_bytes("skroutz_sku_reviews.json")) == "skroutz"
    reviews = extract_reviews(page_bytes("skroutz_shop_reviews.json"), SHOP_URL)
    assert [r.source for r in reviews] == ["skroutz"] * 3


# --- real saved API answers (../shared/fixtures) -----------------------------------------------------------------


@pytest.mark.fixtures
def test_real_shop_reviews(real_pages: Path):
    body = (real_pages / "skroutz" / "json" / "pyskroutz__shops__reviews.json").read_bytes()
    spider, reviews, next_url = parse(body, "https://api.skroutz.gr/shops/452/reviews?per=3")

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("93026", 1, utc(2017, 1, 31, 15, 30, 9)),
        ("93667", 5, utc(2017, 2, 4, 15, 44, 3)),
        ("91511", 1, utc(2017, 1, 21, 15, 42, 57)),
    ]
    assert all(r.reply is None for r in reviews)  # shop_reply is null in all three
    assert fingerprint(reviews[0].body) == "4ad2130834da"  # the buyer's words, not copied here
    assert "\r" not in reviews[0].body
    assert "\n\nΛόγοι: " in reviews[0].body and reviews[0].body.count("; ") == 2  # the three reasons ticked
    assert next_url == "https://api.skroutz.gr/shops/452/reviews?per=3&page=2"  # page 1 of 164
    assert not spider.problems
    assert choose_spider("", body) == "skroutz"
    assert len(extract_reviews(body, "")) == 3


@pytest.mark.fixtures
def test_real_product_reviews(real_pages: Path):
    body = (real_pages / "skroutz" / "json" / "pyskroutz__skus_reviews_retrieve.json").read_bytes()
    spider, reviews, next_url = parse(body, "https://api.skroutz.gr/skus/3783654/reviews")

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("155965", 5, utc(2017, 2, 8, 19, 37, 46)),
        ("154332", 5, utc(2017, 2, 3, 11, 53, 44)),
        ("153790", 4, utc(2017, 2, 1, 5, 59, 50)),
    ]
    assert fingerprint(reviews[2].body) == "44b0b0c87242"
    assert "\n\nΘετικά: " in reviews[2].body and "\n\nΜέτρια: " in reviews[2].body
    assert reviews[0].url == "https://www.skroutz.gr/s/3783654"
    assert next_url == "https://api.skroutz.gr/skus/3783654/reviews?page=2"
    assert not spider.problems
