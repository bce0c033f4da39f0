"""extract_reviews / choose_spider: offline extraction of saved pages, as `repwatch extract` uses it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spiders.extract import Blocked, choose_spider, extract_reviews, page_url, strip_fences
from tests.spiders._pages import extract_survives, page_bytes

TRUSTPILOT_URL = "https://www.trustpilot.com/review/nordlys-bikes.example"


def test_trustpilot_page_end_to_end():
    reviews = extract_reviews(page_bytes("trustpilot.html"), TRUSTPILOT_URL)

    assert [r.external_id for r in reviews] == [
        "65f1a2b3c4d5e6f708192a3b", "65e0b1c2d3e4f5061728394a", "65d9c0b1a2f3e4d5c6b7a898",
    ]
    assert all(r.source == "trustpilot" for r in reviews)
    line = json.loads(reviews[0].to_json())
    assert line["rating"] == 1 and line["published_at"] == "2025-03-14T09:12:45+00:00"
    assert line["reply"]["published_at"] == "2025-03-15T08:00:00+00:00"


@pytest.mark.parametrize(
    ("url", "page", "expected"),
    [
        (TRUSTPILOT_URL, "schema_org_jsonld.html", "trustpilot"),  # the host decides first
        ("https://uk.trustpilot.com/review/x.example", "schema_org_jsonld.html", "trustpilot"),
        ("https://mirror.example/tp", "trustpilot.html", "trustpilot"),  # then the content (it has JSON-LD too)
        ("", "trustpilot_2024_cards.html", "trustpilot"),
        ("https://kettle-corner.example/k", "schema_org_jsonld.html", "schema_org"),
        ("https://flourandfold.example/rye", "schema_org_microdata.html", "schema_org"),
        ("", "consumeraffairs.html", "consumeraffairs"),  # its microdata reviews are read by the site spider
        ("", "yelp.html", "yelp"),
        ("", "yelp_gql_batch.json", "yelp"),
        ("https://m.yelp.com/biz/x", "schema_org_jsonld.html", "yelp"),
        ("", "skroutz_shop_reviews.json", "skroutz"),
        ("https://api.skroutz.gr/skus/1/reviews", "skroutz_sku_reviews.json", "skroutz"),
        ("https://www.consumeraffairs.com/moving/x.html", "schema_org_jsonld.html", "consumeraffairs"),
        ("", "bbb_profile.html", "bbb"),
        ("", "bbb_customer_reviews.json", "bbb"),
        ("", "bbb_complaints.json", "bbb"),
        ("https://www.bbb.org/us/or/portland/profile/x/y-1296-1", "schema_org_jsonld.html", "bbb"),
        ("", "ceneo.html", "ceneo"),
        ("https://www.ceneo.pl/1", "schema_org_jsonld.html", "ceneo"),
        ("", "feed_google_alerts.xml", "feed"),
        ("", "feed_app_store.xml", "feed"),
        ("https://blog.example/feed.xml", "feed_rss.xml", "feed"),
    ],
)
def test_choose_spider(url: str, page: str, expected: str):
    assert choose_spider(url, page_bytes(page)) == expected


def test_unknown_site_is_a_clear_value_error():
    with pytest.raises(ValueError, match=r"no spider recognises https://blog\.example/.*--spider NAME"):
        extract_reviews(b"<html><body><p>Just a blog post.</p></body></html>", "https://blog.example/post")
    with pytest.raises(ValueError, match="unknown spider 'nope'"):
        extract_reviews(page_bytes("trustpilot.html"), TRUSTPILOT_URL, spider="nope")


def test_json_no_spider_reads_is_a_clear_value_error():
    with pytest.raises(ValueError) as caught:
        extract_reviews(b'{"items": [{"id": 1}]}', "https://api.example/things")
    assert "no spider recognises" in str(caught.value)


def test_schema_org_on_a_json_body_yields_nothing_instead_of_crashing():
    assert extract_reviews(b'{"items": [{"id": 1}]}', "https://api.example/things", spider="schema_org") == []


def test_named_spider_overrides_auto():
    reviews = extract_reviews(page_bytes("trustpilot.html"), TRUSTPILOT_URL, spider="schema_org")
    assert [r.author for r in reviews] == ["Maren Holt"]  # what the page's JSON-LD carries


@pytest.mark.parametrize(
    ("page", "vendor"),
    [("blocked_cloudflare_challenge.html", "cloudflare"), ("blocked_perimeterx.html", "perimeterx"),
     ("blocked_imperva.html", "imperva"), ("blocked_datadome.html", "datadome"), ("blocked_akamai.html", "akamai"),
     ("blocked_sucuri.html", "sucuri")],
)
def test_challenge_pages_raise_blocked(page: str, vendor: str):
    with pytest.raises(Blocked) as caught:
        extract_reviews(page_bytes(page), TRUSTPILOT_URL)
    assert caught.value.vendor == vendor
    assert str(caught.value) == f"blocked: {vendor}"


def test_blocked_by_status_and_headers():
    with pytest.raises(Blocked) as caught:
        extract_reviews(b"", TRUSTPILOT_URL, status=429, headers={"Retry-After": "60"})
    assert caught.value.vendor == "http-429"
    with pytest.raises(Blocked, match="cloudflare"):
        extract_reviews(b"<html></html>", TRUSTPILOT_URL, headers={"cf-mitigated": "challenge"})


@pytest.mark.parametrize(
    ("wrapped", "expected"),
    [
        (b"```html\n<html>x</html>\n```\n", b"<html>x</html>"),
        (b"```<!DOCTYPE html>\n<html>x</html>\n```", b"<!DOCTYPE html>\n<html>x</html>"),
        (b"```\n<html>x</html>```", b"<html>x</html>"),
        (b"<html>```not a fence```</html>", b"<html>```not a fence```</html>"),
    ],
)
def test_strip_fences(wrapped: bytes, expected: bytes):
    assert strip_fences(wrapped) == expected


def test_fenced_page_is_extracted():
    fenced = b"```html\n" + page_bytes("trustpilot.html") + b"\n```\n"
    assert len(extract_reviews(fenced, TRUSTPILOT_URL)) == 3


def test_without_a_url_the_canonical_url_is_used():
    reviews = extract_reviews(page_bytes("trustpilot_2024_cards.html"), "")
    assert reviews[0].url == "https://www.trustpilot.com/reviews/66589a0b1c2d3e4f50617283"
    assert page_url("file:///tmp/saved.html", page_bytes("schema_org_jsonld.html")) == (
        "https://kettle-corner.example/kettles/copper-17"
    )
    assert page_url("www.trustpilot.com/review/x.example", b"") == "https://www.trustpilot.com/review/x.example"
    assert page_url("", b"<html></html>") == "file:///unknown-page.html"


def test_charset_from_meta_and_headers():
    latin1 = '<html><head><meta charset="iso-8859-1"></head><body><script type="application/ld+json">' \
             '{"@type": "Review", "author": "Zoë", "reviewBody": "Très bien", "reviewRating": 5}</script></body></html>'
    (review,) = extract_reviews(latin1.encode("latin-1"), "https://shop.example/p")
    assert (review.author, review.body) == ("Zoë", "Très bien")
    no_meta = latin1.replace('<meta charset="iso-8859-1">', "").encode("latin-1")
    (review,) = extract_reviews(no_meta, "https://shop.example/p", headers={"Content-Type": "text/html; charset=latin-1"})
    assert review.author == "Zoë"


# --- real saved pages (../shared/fixtures) ---------------------------------------------------------------------


@pytest.mark.fixtures
def test_every_real_blocked_page_raises_blocked(real_pages: Path):
    expected = {
        "bbsetup__pyszne_aux.pyszne.pl.html": "cloudflare",
        "bbsetup__canva_about.canva.com.html": "cloudflare",
        "bbsetup__fanduel_api.fanduel.com.html": "perimeterx",
    }
    pages = sorted((real_pages / "blocked").glob("*.html"))
    assert {p.name for p in pages} >= set(expected)
    for page in pages:
        with pytest.raises(Blocked) as caught:
            extract_reviews(page.read_bytes(), "", spider="auto")
        assert caught.value.vendor == expected.get(page.name, caught.value.vendor), page.name


@pytest.mark.fixtures
def test_real_pages_auto_detected_without_url(real_pages: Path):
    counts = {
        "trustpilot/fakepilot__twenix.es__2025-05.html": ("trustpilot", 20),
        "trustpilot/fakepilot__www.granada.no__2025-05.html": ("trustpilot", 1),
        "schema_org/recipe-scrapers__williamssonoma_2__bazaarvoice-microdata.html": ("schema_org", 8),
        "schema_org/recipe-scrapers__rachlmansfield__jsonld-recipe-reviews.html": ("schema_org", 78),
        "consumeraffairs/cabaleirog__sellmytimesharenow__2018-11.html": ("consumeraffairs", 31),
        "yelp/izzykiver__yelp_reviews__user-details__2019-09.html": ("yelp", 9),
        "yelp/json/scrapfly__yelp_gql-batch_reviews_projected__2025-08.json": ("yelp", 30),
        "skroutz/json/pyskroutz__shops__reviews.json": ("skroutz", 3),
        "skroutz/json/pyskroutz__skus_reviews_retrieve.json": ("skroutz", 3),
    }
    for relative, (spider, count) in counts.items():
        body = (real_pages / relative).read_bytes()
        assert choose_spider("", body) == spider, relative
        reviews = extract_reviews(body, "")
        assert len(reviews) == count, relative
        assert all(r.source == spider for r in reviews)


@pytest.mark.fixtures
def test_real_fenced_yelp_page_is_unwrapped_then_read(real_pages: Path):
    body = (real_pages / "yelp" / "bbsetup__armchairdj.yelp.com__user-reviews__2021-01.html").read_bytes()
    assert body.startswith(b"```") and not strip_fences(body).startswith(b"`")
    assert strip_fences(body).rstrip().endswith(b"</html>")
    # Refused with "no spider recognises" until the yelp spider existed; now it is read like any Yelp page.
    assert choose_spider("", body) == "yelp"
    assert len(extract_reviews(body, "")) == 10


# --- robustness: mutated pages never crash the extractor ---------------------------------------------------------

OUR_PAGES = [
    "trustpilot.html", "trustpilot_last_page.html", "trustpilot_2024_cards.html", "trustpilot_2016_card.html",
    "schema_org_jsonld.html", "schema_org_microdata.html", "blocked_cloudflare_challenge.html",
    "consumeraffairs.html", "yelp.html", "bbb_profile.html", "bbb_customer_reviews.json", "ceneo.html",
    "feed_app_store.xml", "feed_rss.xml",
]


@st.composite
def mutated_pages(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(OUR_PAGES))
    body = page_bytes(name)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        mutation = draw(st.sampled_from(["truncate", "delete", "junk", "huge", "swap"]))
        at = draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        if mutation == "truncate":
            body = body[:at]
        elif mutation == "delete":
            body = body[:at] + body[at + draw(st.integers(min_value=1, max_value=200)):]
        elif mutation == "junk":
            body = body[:at] + draw(st.binary(min_size=1, max_size=64)) + body[at:]
        elif mutation == "huge":
            filler = draw(st.sampled_from([b"x", b" ", b"\\u00e9", b"&amp;", b"<br>", "é".encode()]))
            body = body[:at] + filler * 100_000 + body[at:]
        else:
            text = draw(st.sampled_from([b'"rating":', b'"id":', b'"reviewRating":', b'"datePublished":', b"datetime="]))
            value = draw(st.sampled_from([b'"NaN"', b"null", b"[]", b"{}", b'"9e999"', b'"\\ud800"', b"-1", b'"x"']))
            body = body.replace(text, text + value + b"," if text.endswith(b":") else text + value, 1)
    return name, body


@settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_pages(), st.sampled_from(["auto", "trustpilot", "schema_org"]))
def test_mutated_pages_never_crash(page: tuple[str, bytes], spider: str):
    name, body = page
    url = TRUSTPILOT_URL if name.startswith("trustpilot") else "https://shop.example/p"
    extract_survives(body, url if spider != "auto" else "", spider)
