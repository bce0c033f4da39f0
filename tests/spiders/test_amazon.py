"""AmazonSpider on our own product-reviews page and on the real saved product page (2019)."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from spiders.extract import Blocked, choose_spider, extract_reviews
from spiders.sites.amazon import AmazonSpider
from tests.spiders._pages import fingerprint, html_response, page_bytes

REVIEWS_URL = "https://www.amazon.com/Acme-Burr-Grinder/product-reviews/B0ACME0001?sortBy=recent"


def parse(body_or_name, url=REVIEWS_URL):
    spider = AmazonSpider(url=url)
    response = html_response(body_or_name, url)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_review_blocks_with_stars_title_date_and_text():
    spider, reviews, next_url = parse("amazon.html")
    assert [(r.external_id, r.rating, r.author, r.title, r.published_at) for r in reviews] == [
        ("R1ACMEFIRST0001", 1, "Jordan P.", "Stopped grinding after a week", datetime(2025, 3, 3, tzinfo=UTC)),
        ("R2ACMESECOND002", 4, "Amazon Customer", "Good, a bit loud", datetime(2025, 2, 27, tzinfo=UTC)),
    ]
    assert reviews[0].body == "The motor hums but the burrs do not turn.\n\nSeller did not answer & the return window closed."
    assert reviews[1].body == "Grinds evenly. Loud in the morning."  # not the expander's "Read more"
    assert reviews[0].url == "https://www.amazon.com/gp/customer-reviews/R1ACMEFIRST0001"
    assert all(r.reply is None for r in reviews)
    assert next_url == ("https://www.amazon.com/Acme-Burr-Grinder/product-reviews/B0ACME0001/"
                        "ref=cm_cr_arp_d_paging_btm_next_2?ie=UTF8&sortBy=recent&pageNumber=2")
    assert not spider.problems


def test_last_page_other_scales_and_bad_dates():
    body = (page_bytes("amazon.html").replace(b'<li class="a-last">', b'<li class="a-last a-disabled">')
            .replace(b"4.0 out of 5 stars", b"4,0 von 5 Sternen").replace(b"February 27, 2025", b"27. Februar 2025"))
    spider, reviews, next_url = parse(body)
    assert next_url is None
    assert [r.rating for r in reviews] == [1, 4]
    assert reviews[1].published_at is None and spider.problems == {"amazon/bad_date": 1}


def test_detection_and_the_robot_check():
    assert choose_spider(REVIEWS_URL, b"<html></html>") == "amazon"
    assert choose_spider("", page_bytes("amazon.html")) == "amazon"
    with pytest.raises(Blocked, match="amazon"):
        extract_reviews(page_bytes("blocked_amazon.html"), REVIEWS_URL)


@pytest.mark.fixtures
def test_the_real_product_page(real_pages: Path):
    """Eight top reviews of a 2019 product page (BeautifulSoup-indented): every id, star, date, author, title."""
    body = (real_pages / "amazon" / "AlanSwenson__sony-fe-24-105-B076V9P58R__product-page-prettified__2019.html").read_bytes()
    url = "https://www.amazon.com/dp/B076V9P58R"
    assert choose_spider(url, body) == choose_spider("", body) == "amazon"
    spider, reviews, _ = parse(body, url)
    assert [(r.external_id, r.published_at.date().isoformat()) for r in reviews] == [
        ("RKGX9D6OQ4PUZ", "2018-08-22"), ("RU2CQL1DYB7AH", "2017-12-07"), ("R2XCK0SCRZRDZF", "2018-04-29"),
        ("R11DWOKNW2HYRQ", "2018-07-03"), ("R4SEALAJI9372", "2018-09-06"), ("R2O4L64N3OKGF2", "2018-05-09"),
        ("R2CW0FS1FMFAJT", "2018-09-12"), ("R2XMHW5P1YXB75", "2018-06-06"),
    ]
    assert all(r.rating == 5 for r in reviews) and not spider.problems
    first = reviews[0]
    assert fingerprint(first.author) == "58a148c16df8" and fingerprint(first.title) == "3d76ec60b0ea"
    assert fingerprint(first.body[:80]) == "18f650f390b5" and len(first.body) == 2731
    assert first.body.count("\n\n") == 5 and not any("Read more" in r.body for r in reviews)  # paragraphs kept
    assert [len(r.body) for r in reviews[1:]] == [462, 268, 354, 509, 95, 652, 61]
