"""SchemaOrgSpider: JSON-LD in every nesting, microdata, rating scales, ids, dedupe; real recipe pages."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from spiders.extract import extract_reviews
from spiders.generic.schema_org import MAX_MICRODATA_DEPTH, SchemaOrgSpider, content_id
from tests.spiders._pages import fingerprint, html_response

SHOP_URL = "https://kettle-corner.example/kettles/copper-17"
RECIPE_URL = "https://flourandfold.example/rye"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse(name_or_body, url):
    spider = SchemaOrgSpider(url=url)
    response = html_response(name_or_body, url)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_json_ld_reviews_in_every_nesting():
    spider, reviews, next_url = parse("schema_org_jsonld.html", SHOP_URL)

    assert [r.author for r in reviews] == ["Ines", "Bob", "Chen Wei", "Dev", "Ola"]
    ines, bob, chen, dev, ola = reviews
    assert ines.external_id == SHOP_URL + "#review-101"  # @id
    assert ines.title == "Great kettle"
    assert ines.published_at == utc(2024, 9, 1)
    assert dev.external_id == "rv-77"  # identifier, in a `reviews` array of a LocalBusiness in a top-level list
    assert dev.rating == 3  # a bare number as reviewRating
    assert bob.rating == 4.0  # 8 of bestRating 10
    assert bob.published_at == utc(2024, 8, 15, 8, 30)  # +02:00 → UTC
    assert chen.body == "Handle got hot.\n\nReturned it."  # markup in a JSON-LD body becomes paragraphs
    assert ola.rating == 4.5  # "4,5"
    assert ola.published_at is None
    assert bob.body == "Lid is stiff & loud."  # `description` when there is no reviewBody; entities decoded
    assert bob.external_id == content_id("Bob", "2024-08-15", "Lid is stiff & loud.")
    assert all(r.url == SHOP_URL for r in reviews)
    assert spider.problems == {"schema_org/bad_json_ld": 1}  # the truncated third script; the others survive
    assert next_url == "https://kettle-corner.example/kettles/copper-17/reviews?page=2"


MICRODATA_REVIEW = (
    '<div itemprop="review" itemscope itemtype="https://schema.org/Review" itemid="#m1">'
    '<span itemprop="reviewBody">Soggy crust.</span><span itemprop="author">Mo</span></div>'
)
JSON_LD_REVIEW = (
    '<script type="application/ld+json">{"@type": "Review", "@id": "#j1", "reviewBody": "Burnt toast.",'
    ' "author": "Jo", "reviewRating": {"ratingValue": 1}}</script>'
)


def nested_items(depth: int, properties: int = 1) -> str:
    opening = '<div itemprop="about" itemscope itemtype="https://schema.org/Thing">' + '<i itemprop="name">n</i>' * properties
    return opening * depth + "</div>" * depth


def parse_counted(body: str) -> tuple[list[str], int]:
    """The ids the spider reads from `body`, and its `repwatch/microdata_skipped` count (a crawler's stats)."""
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(SchemaOrgSpider)
    spider = crawler._create_spider(url=SHOP_URL)
    reviews = list(spider.parse_reviews(html_response(body.encode(), SHOP_URL)))
    return [r.external_id for r in reviews], crawler.stats.get_value("repwatch/microdata_skipped", 0)


def test_microdata_within_the_limits_is_read_beside_json_ld():
    page = f"<html><head>{JSON_LD_REVIEW}</head><body>{nested_items(MAX_MICRODATA_DEPTH - 1)}{MICRODATA_REVIEW}</body></html>"
    assert parse_counted(page) == ([SHOP_URL + "#j1", SHOP_URL + "#m1"], 0)


@pytest.mark.parametrize(
    "items",
    [nested_items(MAX_MICRODATA_DEPTH + 1), nested_items(1000), nested_items(10, properties=400)],
    ids=["just too deep", "1,000 deep (RecursionError in extruct)", "too many properties nested"],
)
def test_microdata_too_deep_or_too_large_is_skipped_counted_and_the_json_ld_reviews_kept(items):
    page = f"<html><head>{JSON_LD_REVIEW}</head><body>{items}{MICRODATA_REVIEW}</body></html>"
    assert parse_counted(page) == ([SHOP_URL + "#j1"], 1)


def test_extract_normalizes_markup_in_json_ld_bodies():
    reviews = extract_reviews((Path(__file__).parent / "pages" / "schema_org_jsonld.html").read_bytes(), SHOP_URL)
    assert reviews[1].body == "Lid is stiff & loud."
    assert reviews[2].body == "Handle got hot.\n\nReturned it."


def test_microdata_and_the_same_reviews_in_json_ld_count_once():
    spider, reviews, next_url = parse("schema_org_microdata.html", RECIPE_URL)

    assert [(r.author, r.rating, r.published_at) for r in reviews] == [
        ("breadhead77", 4, utc(2023, 11, 2)),
        ("Marta S", 1, utc(2023, 10, 15)),
        ("Jo", 4.5, utc(2023, 9, 9, 22)),  # 9 on a 0-10 scale; -04:00 → UTC
    ]
    assert reviews[0].title == "Dense but tasty"
    assert reviews[2].external_id == "https://flourandfold.example/rye#r9003"  # microdata itemid
    assert reviews[2].body == "Best rye I have baked.\n\nUsed 10% more water."
    assert reviews[0].external_id.startswith("sha256:")
    assert next_url == "https://flourandfold.example/rye?reviews_page=2"
    assert not spider.problems


def test_microdata_only_gives_the_same_ids_as_json_ld_only():
    """A site that moves its reviews from JSON-LD to microdata must not produce 'new' reviews."""
    body = (Path(__file__).parent / "pages" / "schema_org_microdata.html").read_bytes()
    head, _, rest = body.partition(b'<script type="application/ld+json">')
    microdata_only = head + rest.partition(b"</script>")[2]
    json_ld_only = body.split(b"<body>")[0] + b"<body></body></html>"

    from_microdata = parse(microdata_only, RECIPE_URL)[1]
    from_json_ld = parse(json_ld_only, RECIPE_URL)[1]
    assert [r.external_id for r in from_json_ld] == [r.external_id for r in from_microdata[:2]]


def test_microdata_reviews_without_a_body_property_take_their_own_visible_text():
    url = "https://hartley.example/reviews"
    spider, reviews, _ = parse("schema_org_microdata_own_text.html", url)
    assert [(r.author, r.rating, r.published_at, r.title) for r in reviews] == [
        ("Dana W.", 1, utc(2025, 2, 11), "Never showed up"), ("Sam P.", 5, utc(2025, 1, 30), None),
        ("Ravi", 4, None, None),
    ]
    # Not the author, stars, title, date, script, button or hidden parts: those are fields of their own, or not text.
    assert reviews[0].body == "Booked for Tuesday, nobody came.\nCalled twice & no answer.\n\nFound someone else."
    assert reviews[1].body == "Fixed the leak in an hour. Fair price."
    assert reviews[2].body == "Marked as reviewBody: this text is the body."
    assert len({r.external_id for r in reviews}) == 3
    again = parse("schema_org_microdata_own_text.html", url)[1]
    assert [(r.external_id, r.snippet_hash) for r in again] == [(r.external_id, r.snippet_hash) for r in reviews]


def test_generated_ids_are_stable_and_distinct_for_double_posts():
    review = (
        '{"@type": "Review", "author": "Al", "datePublished": "2024-01-01", "reviewBody": "Same text.",'
        ' "reviewRating": {"ratingValue": 5}}'
    )
    body = f'<html><head><script type="application/ld+json">[{review}, {review}]</script></head></html>'.encode()
    first = [r.external_id for r in parse(body, SHOP_URL)[1]]
    again = [r.external_id for r in parse(body, SHOP_URL)[1]]
    assert first == again
    assert len(set(first)) == 2 and first[1] == first[0] + "-2"


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        ('{"ratingValue": "5"}', 5),
        ('{"ratingValue": 8, "bestRating": 10}', 4.0),
        ('{"ratingValue": 8, "bestRating": 10, "worstRating": 1}', 4.0),
        ('{"ratingValue": 3, "bestRating": 3, "worstRating": 1}', 5.0),
        ('{"ratingValue": 0, "bestRating": 2, "worstRating": -2}', 3.0),
        ('{"ratingValue": 0, "bestRating": 5, "worstRating": 0}', 1.0),
        ('{"ratingValue": 7}', 5.0),
        ('{"ratingValue": "n/a"}', None),
        ('{"bestRating": 5}', None),
        ("null", None),
    ],
)
def test_rating_scales(rating: str, expected):
    body = (
        '<script type="application/ld+json">{"@type": "Review", "author": "A", "reviewBody": "x", '
        f'"reviewRating": {rating}}}</script>'
    ).encode()
    (review,) = parse(body, SHOP_URL)[1]
    assert review.rating == expected


def test_an_id_shared_by_all_reviews_is_not_an_id():
    reviews_json = ", ".join(
        f'{{"@type": "Review", "url": "{SHOP_URL}/reviews", "author": "{name}", "reviewBody": "{name} says hi"}}'
        for name in ("Ann", "Ben")
    )
    body = f'<script type="application/ld+json">[{reviews_json}]</script>'.encode()
    spider, reviews, _ = parse(body, SHOP_URL)
    assert [r.external_id[:7] for r in reviews] == ["sha256:", "sha256:"]
    assert spider.problems["schema_org/shared_review_id"] == 2


def test_page_without_reviews():
    spider, reviews, next_url = parse(b"<html><body><p>No reviews yet.</p></body></html>", SHOP_URL)
    assert reviews == [] and next_url is None
    assert not SchemaOrgSpider.sniff(html_response(b"<html><body>hi</body></html>", SHOP_URL))


# --- real saved pages (../shared/fixtures) ---------------------------------------------------------------------


@pytest.mark.fixtures
def test_real_bazaarvoice_microdata(real_pages: Path):
    body = (real_pages / "schema_org" / "recipe-scrapers__williamssonoma_2__bazaarvoice-microdata.html").read_bytes()
    reviews = extract_reviews(body, "https://www.williams-sonoma.com/recipe/double-chocolate-layer-cake.html")

    assert [(r.rating, r.published_at.date().isoformat(), fingerprint(r.author)) for r in reviews] == [
        (1, "2022-10-30", "a0f4fc77221a"),
        (5, "2020-07-10", "05fbd4fee029"),
        (5, "2020-04-23", "a2f1a2252a2b"),
        (5, "2018-09-15", "dfab5ea6bb10"),
        (5, "2017-04-29", "4d083c809092"),
        (1, "2017-03-31", "92c41db419cd"),
        (5, "2016-11-15", "e568c65604a3"),
        (5, "2016-09-20", "29a6123b7cf6"),
    ]
    assert fingerprint(reviews[0].title) == "baad92c5f22d"
    assert all(r.body and r.external_id.startswith("sha256:") for r in reviews)
    assert len({r.external_id for r in reviews}) == 8


@pytest.mark.fixtures
def test_real_json_ld_recipe_reviews(real_pages: Path):
    body = (real_pages / "schema_org" / "recipe-scrapers__rachlmansfield__jsonld-recipe-reviews.html").read_bytes()
    reviews = extract_reviews(body, "https://rachlmansfield.com/healthy-flourless-brownies/")

    assert len(reviews) == 78
    assert len({r.external_id for r in reviews}) == 78  # one review is posted twice: two ids, "-2" on the copy
    assert sum(r.external_id.endswith("-2") for r in reviews) == 1
    assert (fingerprint(reviews[0].author), reviews[0].rating, reviews[0].published_at) == ("f2355ea21bde", 5, utc(2020, 2, 13))
    assert (fingerprint(reviews[-1].author), reviews[-1].published_at) == ("5d32d99f6119", utc(2023, 4, 27))
    assert all(r.rating in (1, 2, 3, 4, 5) and r.body and r.published_at for r in reviews)
