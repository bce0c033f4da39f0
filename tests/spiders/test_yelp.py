"""YelpSpider on our hand-written pages (review blocks, GraphQL feed) and on the real saved Yelp pages."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from scrapy.http import TextResponse

from spiders.extract import choose_spider, extract_reviews
from spiders.sites.yelp import YelpSpider
from tests.spiders._pages import fingerprint, html_response, page_bytes

BIZ_URL = "https://www.yelp.com/biz/copper-kettle-diner-portland"
GQL_URL = "https://www.yelp.com/gql/batch"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse_html(name_or_body, url=BIZ_URL):
    spider = YelpSpider(url=url)
    response = html_response(name_or_body, url)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def parse_json(body: bytes, url=GQL_URL):
    spider = YelpSpider(url=url)
    response = TextResponse(url=url, body=body, encoding="utf-8")
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_review_blocks():
    spider, reviews, next_url = parse_html("yelp.html")

    assert [(r.external_id, r.rating, r.published_at, r.author, r.language) for r in reviews] == [
        ("kT3vQm9xZbA1cD2eF4gH5w", 1, utc(2020, 2, 9), "Priya S.", "en"),
        ("Wq8nP2rLs0Tu4Vx6Yz1AbC", 4, utc(2019, 11, 30), "Tomás G.", "es"),
        ("Zz9yX8wV7uT6sR5qP4oN3m", 5, utc(2019, 7, 4), "Lee K.", "en"),
    ]
    priya = reviews[0]
    assert priya.url == BIZ_URL + "?hrid=kT3vQm9xZbA1cD2eF4gH5w"
    assert priya.body == "Waited 40 minutes for two eggs & toast.\n\nThe coffee was cold."
    # The whole comment, not the cut one shown before "Read more".
    assert priya.reply.body == "Priya, we were two cooks short that Sunday and it showed.\n\nYour next breakfast is on us."
    assert priya.reply.published_at == utc(2020, 2, 11)
    assert reviews[1].reply is None and reviews[2].reply is None
    assert all(len(r.snippet_hash) == 64 for r in reviews)
    assert next_url == BIZ_URL + "?start=20"
    assert not spider.problems


def test_updated_review_keeps_its_current_stars_date_and_text_not_the_archived_version():
    _, reviews, _ = parse_html("yelp.html")
    tomas = reviews[1]
    assert (tomas.rating, tomas.published_at) == (4, utc(2019, 11, 30))
    assert tomas.body == "Mucho mejor ahora. Las tortitas están buenísimas."
    assert "Prev0ld1dOfTomas2018xx" not in [r.external_id for r in reviews]


def test_business_page_with_microdata_gives_ratings_dates_and_one_review_per_review():
    """Stars and dates only in meta[itemprop]; an archived previous version (itself marked as a review) is not a
    second review, and its stars, date and text are not the current ones."""
    url = "https://www.yelp.com/biz/blue-door-bakery-austin"
    spider, reviews, _ = parse_html("yelp_biz_microdata.html", url)
    assert [(r.external_id, r.rating, r.published_at, r.author) for r in reviews] == [
        ("Rv1aB2cD3eF4gH5iJ6kL7m", 2, utc(2016, 5, 2), "Lena K."),
        ("Xy9zW8vU7tS6rQ5pO4nM3l", 5, utc(2016, 4, 18), "Omar B."),
    ]
    assert reviews[0].body == "Second visit: the croissants were stale again.\nNot coming back."
    assert reviews[0].language == "en" and reviews[0].url == url + "?hrid=Rv1aB2cD3eF4gH5iJ6kL7m"
    assert not spider.problems
    assert choose_spider(url, page_bytes("yelp_biz_microdata.html")) == "yelp"
    assert choose_spider("", page_bytes("yelp_biz_microdata.html")) == "yelp"


def test_next_page_only_from_a_page_with_reviews():
    assert parse_html("yelp.html", BIZ_URL + "?start=20")[2] is None  # a link to itself is not followed
    search = b'<html><body><a class="next" href="/search?find_desc=x&start=10">Next</a></body></html>'
    assert parse_html(search, "https://www.yelp.com/search?find_desc=x")[1:] == ([], None)


def test_bad_fields_are_counted_not_fatal():
    body = (
        page_bytes("yelp.html")
        .replace(b'title="4.0 star rating"', b'title="no rating"')
        .replace(b"7/4/2019", b"last July")
        .replace(b'data-review-id="kT3vQm9xZbA1cD2eF4gH5w" data-signup', b'data-review-id="" data-signup')
    )
    spider, reviews, _ = parse_html(body)

    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("Wq8nP2rLs0Tu4Vx6Yz1AbC", None, utc(2019, 11, 30)), ("Zz9yX8wV7uT6sR5qP4oN3m", 5, None),
    ]
    assert spider.problems == {"yelp/missing_id": 1, "yelp/missing_rating": 1, "yelp/bad_date": 1}


def test_graphql_batch_answer():
    spider, reviews, next_url = parse_json(page_bytes("yelp_gql_batch.json"))

    assert [(r.external_id, r.rating, r.published_at, r.author, r.language) for r in reviews] == [
        ("nEw1sTrEvIeW0aBcDeFgHi", 5, utc(2025, 6, 2, 14, 31, 7), "Marta P.", "en"),
        ("sEcOnDrEvIeW1aBcDeFgHi", 2, utc(2025, 5, 28, 8, 5), "Owen B.", "en"),
        ("tHiRdReViEw2aBcDeFgHiJ", 3, utc(2025, 5, 20, 19, 45, 12), "Camille D.", "fr"),
    ]
    assert reviews[0].url == BIZ_URL + "?hrid=nEw1sTrEvIeW0aBcDeFgHi"
    assert reviews[0].body == "Booth by the window, pancakes in five minutes.\n\nThe syrup is real maple & worth it."
    assert next_url is None  # the feed's next page is a POST with a cursor
    assert not spider.problems


def test_graphql_projected_node_list_and_broken_nodes():
    batch = json.loads(page_bytes("yelp_gql_batch.json"))
    nodes = [edge["node"] for edge in batch[0]["data"]["business"]["reviews"]["edges"]]
    for node in nodes:
        node["createdAt"] = node["createdAt"]["utcDateTime"]  # the projected form flattens the time
    _, reviews, _ = parse_json(json.dumps(nodes).encode())
    assert [r.external_id for r in reviews] == [n["encid"] for n in nodes]

    edges = batch[0]["data"]["business"]["reviews"]["edges"]
    edges[0]["node"] = None
    edges[1]["node"]["rating"] = 7
    edges[2]["node"]["createdAt"] = {"utcDateTime": "soon"}
    spider, reviews, _ = parse_json(json.dumps(batch).encode())
    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("sEcOnDrEvIeW1aBcDeFgHi", None, utc(2025, 5, 28, 8, 5)), ("tHiRdReViEw2aBcDeFgHiJ", 3, None),
    ]
    assert spider.problems == {"yelp/unreadable_review": 1, "yelp/bad_rating": 1, "yelp/bad_date": 1}


def test_auto_detection_and_fenced_pages():
    assert choose_spider("https://www.yelp.co.uk/biz/x", b"<html></html>") == "yelp"
    assert choose_spider("", page_bytes("yelp_gql_batch.json")) == "yelp"
    assert choose_spider("", page_bytes("yelp.html")) == "yelp"
    fenced = b"```html\n" + page_bytes("yelp.html") + b"\n```\n"
    reviews = extract_reviews(fenced, "")  # the canonical link gives the business URL
    assert [r.source for r in reviews] == ["yelp"] * 3
    assert reviews[0].url == BIZ_URL + "?hrid=kT3vQm9xZbA1cD2eF4gH5w"


# --- real saved pages (../shared/fixtures) -------------------------------------------------------------------------

USER_PAGES = {
    # file: [(id, rating, published, has owner reply), ...] for every review on the page
    "bbsetup__armchairdj.yelp.com__user-reviews__2021-01.html": [
        ("E-LX4ggubOKNzKC-LLZupQ", 1, utc(2018, 11, 1), False),
        ("M1lr6H7_EVceUbBPh-jyDQ", 1, utc(2015, 8, 7), True),
        ("0_NDTbOeQ4fu-qL99CMudw", 1, utc(2015, 7, 5), True),
        ("N2ueF_MnbblrKj2AXxA2fg", 1, utc(2015, 5, 1), True),
        ("QUOWoHXMlLhNT8XNdB8VQg", 5, utc(2015, 3, 16), False),  # updated review; previous one 3/15/2012
        ("nTsluBo_yhxtrGFWu8HrIg", 5, utc(2013, 9, 9), False),
        ("DLU615PE4WWRNhOf6lO2cg", 5, utc(2013, 9, 9), False),
        ("qE-Bn4G8Q-GqHq0C4z8xsw", 3, utc(2012, 12, 29), True),
        ("JG0r_ahO7kcUg1Z6wMgtrQ", 5, utc(2012, 8, 14), False),
        ("b2gyQSAGY1775CicYCDcXA", 5, utc(2012, 3, 15), False),  # updated review; previous one 2/8/2009
    ],
    "izzykiver__yelp_reviews__user-details__2019-09.html": [
        ("_GgDHI5NTkFCeFlC_gtXMg", 1, utc(2019, 6, 17), False),
        ("6zcGJd2YhWHkPJdbl_R37g", 3, utc(2018, 8, 6), True),
        ("7Q6qUGwIOs3lpUe7Iw8kUg", 3, utc(2018, 4, 16), False),
        ("J3cV0kubdDSV586y22eDfg", 5, utc(2017, 11, 13), False),
        ("XkKgIXPNSeaqr3QcWLincw", 1, utc(2017, 7, 16), False),
        ("n5499F96ig2p6IerO2UQzA", 5, utc(2017, 6, 22), False),
        ("PFjMsq5M4Tlccldo4I2-_Q", 1, utc(2016, 12, 28), False),
        ("5l2th3iuVqw6bfdHSmtgVg", 2, utc(2016, 12, 18), True),
        ("sfK4lZkNbObF6zoRlaHFpA", 1, utc(2016, 11, 22), False),
    ],
}


@pytest.mark.fixtures
@pytest.mark.parametrize("filename", sorted(USER_PAGES))
def test_real_user_pages(real_pages: Path, filename: str):
    body = (real_pages / "yelp" / filename).read_bytes()
    assert choose_spider("", body) == "yelp"
    reviews = extract_reviews(body, "")  # one of the two is wrapped in Markdown fences

    assert [(r.external_id, r.rating, r.published_at, r.reply is not None) for r in reviews] == USER_PAGES[filename]
    for review in reviews:
        assert review.body and review.language == "en" and review.author
        assert review.url == f"https://www.yelp.com/biz/{review.url.split('/biz/')[1].split('?')[0]}?hrid={review.external_id}"
        assert "…" not in (review.reply.body if review.reply else "")


@pytest.mark.fixtures
def test_real_user_page_details(real_pages: Path):
    body = (real_pages / "yelp" / "bbsetup__armchairdj.yelp.com__user-reviews__2021-01.html").read_bytes()
    reviews = {r.external_id: r for r in extract_reviews(body, "")}

    westward = reviews["M1lr6H7_EVceUbBPh-jyDQ"]
    assert fingerprint(westward.author) == "b39ffcd1e9b1"  # a user page: the reviewer is the page's owner
    assert westward.url == "https://www.yelp.com/biz/westward-property-management-chicago?hrid=M1lr6H7_EVceUbBPh-jyDQ"
    assert fingerprint(westward.body) == "e104cd34957c" and "\n\n1)" in westward.body  # paragraphs kept
    assert westward.reply.published_at == utc(2015, 8, 12)
    assert fingerprint(westward.reply.body) == "a627ed7b00be"  # the full hidden text, not the cut-off one
    bikes = reviews["QUOWoHXMlLhNT8XNdB8VQg"]
    assert fingerprint(bikes.body) == "b5761156feac"  # the current version only, not the archived one


@pytest.mark.fixtures
def test_real_graphql_feed(real_pages: Path):
    body = (real_pages / "yelp" / "json" / "scrapfly__yelp_gql-batch_reviews_projected__2025-08.json").read_bytes()
    spider, reviews, next_url = parse_json(body)

    assert len(reviews) == 30 and len({r.external_id for r in reviews}) == 30
    assert [r.rating for r in reviews] == [
        5, 5, 1, 5, 5, 1, 4, 5, 5, 5, 5, 5, 5, 5, 1, 4, 5, 5, 4, 5, 5, 5, 5, 5, 5, 5, 5, 4, 5, 1,
    ]
    first, third, last = reviews[0], reviews[2], reviews[-1]
    assert (first.external_id, fingerprint(first.author), first.published_at) == (
        "BEKMpvESK6PzbN4gbXzntQ", "75bde6486705", utc(2025, 8, 17, 1, 8, 14)
    )
    assert first.url == "https://www.yelp.com/biz/vons-1000-spirits-seattle-4?hrid=BEKMpvESK6PzbN4gbXzntQ"
    assert (third.external_id, third.rating, fingerprint(third.author)) == ("RvxyElsbBcNSn-TMzznfjA", 1, "a6ba330bbfbd")
    assert "\n" in third.body
    assert (last.external_id, last.published_at) == ("N_3-zxYHQmYYqx1IEyRfPA", utc(2025, 7, 28, 15, 53, 5))
    assert all(r.language == "en" and r.body and r.reply is None for r in reviews)
    assert next_url is None and not spider.problems
    assert choose_spider("", body) == "yelp"


@pytest.mark.fixtures
def test_real_search_page_has_no_reviews(real_pages: Path):
    body = (real_pages / "yelp" / "edx-cda__yelp-search-fried-chicken-atlanta__saved-by-browser.html").read_bytes()
    assert extract_reviews(body, "") == []  # the canonical URL is yelp.com: our spider, and nothing to read
    spider, reviews, next_url = parse_html(body, "https://www.yelp.com/search?find_desc=best+fried+chicken")
    assert (reviews, next_url) == ([], None)  # the search's own "next" link is not a review page
