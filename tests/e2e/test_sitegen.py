"""demo.sitegen and demo.reviews: generated pages are well-formed, correctly paged, escaped, and extract to exactly their reviews."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from scrapy.http import HtmlResponse

from bench.site import build_site
from demo.reviews import BUSINESS_NAME, HOSTILE_TEXT, SCHEMA_ORG_PATH, TRUSTPILOT_DOMAIN, demo_pages, demo_reviews
from demo.sitegen import SiteReview, schema_org_page, script_json, trustpilot_pages

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
NASTY_BODY = 'Ends here </script><script>alert("x")</script> and <b>bold</b> & <!-- comment --> "quoted"'
NEXT_LINK = 'a[data-pagination-button-next-link="true"]'
CARD = 'article[data-service-review-card-paper="true"]'


def review(n: int, **changes) -> SiteReview:
    fields = dict(
        id=f"{n:024x}", author=f"Author {n}", rating=1 + n % 5, title=f"Title {n}", body=f"Body of review {n}.",
        published_at=NOW - timedelta(hours=n), language="en",
    )
    return SiteReview(**{**fields, **changes})


def response(path: str, body: bytes) -> HtmlResponse:
    return HtmlResponse(url=f"http://127.0.0.1:8000{path}", body=body, encoding="utf-8")


def next_data(resp: HtmlResponse) -> dict:
    return json.loads(resp.css("script#__NEXT_DATA__::text").get())


def json_ld(resp: HtmlResponse) -> list[dict]:
    return [json.loads(text) for text in resp.css('script[type="application/ld+json"]::text').getall()]


def test_trustpilot_paging_counts_order_and_next_links():
    reviews = [review(n) for n in range(45)]
    pages = trustpilot_pages("shop.example", list(reversed(reviews)), per_page=20)
    assert list(pages) == ["/review/shop.example", "/review/shop.example?page=2", "/review/shop.example?page=3"]
    seen = []
    for number, (path, body) in enumerate(pages.items(), start=1):
        resp = response(path, body)
        props = next_data(resp)["props"]["pageProps"]
        assert props["filters"]["pagination"] == {"currentPage": number, "perPage": 20, "totalCount": 45, "totalPages": 3}
        assert props["businessUnit"]["identifyingName"] == "shop.example"
        ids = [r["id"] for r in props["reviews"]]
        assert len(ids) == (20 if number < 3 else 5)
        assert [a.attrib["href"] for a in resp.css(f'{CARD} a[href^="/reviews/"]')] == [f"/reviews/{i}" for i in ids]
        assert len(resp.css(CARD)) == len(ids)
        graph = json_ld(resp)[0]["@graph"]
        assert [n["@id"].rsplit("/", 1)[1] for n in graph if n["@type"] == "Review"] == ids
        seen += ids
        next_link = resp.css(NEXT_LINK)
        assert len(next_link) == 1
        if number < 3:
            assert next_link.attrib["href"] == f"/review/shop.example?page={number + 1}"
        else:  # the last page: a disabled link with no target, as on the real site
            assert "href" not in next_link.attrib and next_link.attrib["aria-disabled"] == "true"
    assert seen == [r.id for r in reviews]  # newest first, each exactly once


def test_trustpilot_card_and_json_fields():
    replied = review(1, rating=2, reply_body="Sorry to hear this.\nWe fixed it.", reply_at=NOW, country="PL", language="pl")
    resp = response("/review/x.example", trustpilot_pages("x.example", [replied])["/review/x.example"])
    item = next_data(resp)["props"]["pageProps"]["reviews"][0]
    assert item["dates"]["publishedDate"] == "2026-01-10T11:00:00.000Z"
    assert item["consumer"]["displayName"] == "Author 1" and item["consumer"]["countryCode"] == "PL"
    assert item["reply"] == {"message": "Sorry to hear this.\nWe fixed it.", "publishedDate": "2026-01-10T12:00:00.000Z",
                             "updatedDate": None}
    card = resp.css(CARD)
    assert card.css("[data-service-review-rating]").attrib["data-service-review-rating"] == "2"
    assert card.css('img[alt="Rated 2 out of 5 stars"]')
    assert card.css("time[data-service-review-date-time-ago]").attrib["datetime"] == "2026-01-10T11:00:00.000Z"
    assert card.css("[data-consumer-name-typography]::text").get() == "Author 1"
    assert card.css("[data-consumer-country-typography]::text").get() == "PL"
    assert card.css("[data-service-review-title-typography]::text").get() == "Title 1"
    assert card.css("[data-service-review-business-reply-text-typography]::text").getall() == ["Sorry to hear this.", "We fixed it."]
    assert card.css("time[data-service-review-business-reply-date-time-ago]").attrib["datetime"] == "2026-01-10T12:00:00.000Z"


def test_trustpilot_relevant_block_reuses_the_card_marker():
    own, teaser = [review(n) for n in range(3)], [review(100), review(101)]
    resp = response("/review/x.example", trustpilot_pages("x.example", own, relevant=teaser)["/review/x.example"])
    assert len(resp.css(CARD)) == 5  # the trap: a naive selector finds the teasers too
    assert len(resp.css(f'{CARD} a[href^="/reviews/"]')) == 3
    props = next_data(resp)["props"]["pageProps"]
    assert [r["id"] for r in props["relevantReviews"]] == [teaser[0].id, teaser[1].id]
    assert [r["id"] for r in props["reviews"]] == [r.id for r in own]


def test_no_reviews_is_one_page_without_next():
    pages = trustpilot_pages("empty.example", [])
    resp = response("/review/empty.example", pages["/review/empty.example"])
    assert next_data(resp)["props"]["pageProps"]["reviews"] == []
    assert "href" not in resp.css(NEXT_LINK).attrib


def test_trustpilot_rejects_reviews_without_stars():
    with pytest.raises(ValueError, match="1-5 stars"):
        trustpilot_pages("x.example", [review(1, rating=None)])


def test_hostile_text_stays_escaped_in_markup_and_scripts():
    nasty = review(1, title="<b>Title</b>", body=NASTY_BODY, author='Eve "<img src=x>"', reply_body=NASTY_BODY, reply_at=NOW)
    tp_body = trustpilot_pages("x.example", [nasty], relevant=[nasty])["/review/x.example"]
    so_body = schema_org_page("Shop <b>", [nasty])
    for body in (tp_body, so_body):
        text = body.decode()
        assert "<b>" not in text and "<img src=x>" not in text and 'alert("x")</script>' not in text
        assert "<!-- comment" not in text
        # the document has exactly the script elements we wrote, each closed by its own end tag
        assert text.count("</script>") == text.count("<script")
    tp = response("/review/x.example", tp_body)
    assert next_data(tp)["props"]["pageProps"]["reviews"][0]["text"] == NASTY_BODY
    assert json_ld(tp)[0]["@graph"][1]["reviewBody"] == NASTY_BODY
    assert tp.css("[data-service-review-text-typography]::text").get() == NASTY_BODY
    assert tp.css("[data-service-review-title-typography]::text").get() == "<b>Title</b>"
    so = response("/", so_body)
    assert json_ld(so)[0]["@graph"][1]["review"][0]["reviewBody"] == NASTY_BODY
    assert json.loads(script_json({"t": "</script>\u2028"})) == {"t": "</script>\u2028"}


def test_schema_org_page_structure():
    rated, text_only = review(1, rating=4), review(2, rating=None)
    body = schema_org_page("Cafe", [rated, text_only], kind="Product", next_href="/reviews?page=2", page_url="http://h/r")
    resp = response("/r", body)
    graph = json_ld(resp)[0]["@graph"]
    entity = next(node for node in graph if node["@type"] == "Product")
    assert entity["name"] == "Cafe"
    first, second = entity["review"]
    assert first["reviewRating"]["ratingValue"] == 4 and first["author"]["name"] == "Author 1"
    assert first["@id"] == f"http://h/r#review-{rated.id}" and first["name"] == "Title 1"
    assert first["datePublished"] == "2026-01-10T11:00:00+00:00" and first["reviewBody"] == "Body of review 1."
    assert "reviewRating" not in second
    assert entity["aggregateRating"]["reviewCount"] == 1
    assert resp.css('link[rel="next"]::attr(href)').get() == "/reviews?page=2"
    assert not resp.css("[itemprop]")  # one structured copy only: JSON-LD
    assert 'rel="next"' not in schema_org_page("Cafe", [rated]).decode()


def test_demo_data_shape():
    demo = demo_reviews(NOW)
    assert len(demo.trustpilot) == 45 and len(demo.schema_org) == 10
    assert {r.language for r in demo.trustpilot} >= {"en", "pl", "de", "ro", "el"}
    assert {r.rating for r in demo.trustpilot} == {1, 2, 3, 4, 5}
    assert any(r.reply_body for r in demo.trustpilot)
    recent = [r for r in demo.trustpilot + demo.schema_org if NOW - r.published_at < timedelta(hours=72)]
    assert any(r.rating is not None and r.rating <= 2 for r in recent)
    assert any(r.rating is None and "refund" in r.body for r in recent)
    assert sum(r.rating is None for r in demo.schema_org) >= 4
    assert len(recent) < len(demo.trustpilot) // 3  # most is silent history
    assert any(r.body == HOSTILE_TEXT for r in demo.trustpilot)
    assert len({r.id for r in demo.trustpilot + demo.schema_org}) == 55
    assert [r.id for r in demo_reviews(NOW + timedelta(days=3)).trustpilot] == [r.id for r in demo.trustpilot]
    pages = demo_pages(NOW)
    assert set(pages) == {f"/review/{TRUSTPILOT_DOMAIN}", f"/review/{TRUSTPILOT_DOMAIN}?page=2",
                          f"/review/{TRUSTPILOT_DOMAIN}?page=3", SCHEMA_ORG_PATH}
    assert BUSINESS_NAME.encode() in pages[SCHEMA_ORG_PATH]


def test_bench_site_is_deterministic_and_sized():
    first, second = build_site(3, per_page=20), build_site(3, per_page=20)
    assert first == second and len(first) == 3
    assert all(20_000 < len(body) < 200_000 for body in first.values())


# --- the real spiders read every generated page as exactly its reviews ---------------------------------------------

extract = pytest.importorskip("spiders.extract")


def _strip_next_data(body: bytes) -> bytes:
    return re.sub(rb'<script id="__NEXT_DATA__".*?</script>', b"", body, flags=re.S)


@pytest.mark.parametrize("without_next_data", [False, True], ids=["next-data", "html-cards"])
def test_trustpilot_spider_extracts_exactly_each_pages_reviews(without_next_data):
    demo = demo_reviews(NOW)
    expected = sorted(demo.trustpilot, key=lambda r: r.published_at, reverse=True)
    pages = {p: b for p, b in demo_pages(NOW).items() if p.startswith("/review/")}
    got = []
    for path, body in pages.items():
        page = _strip_next_data(body) if without_next_data else body
        got += extract.extract_reviews(page, f"http://127.0.0.1:8000{path}", spider="trustpilot")
    assert [r.external_id for r in got] == [r.id for r in expected]
    for item, want in zip(got, expected):
        assert (item.author, item.rating, item.title, item.body, item.language if not without_next_data else want.language) == (
            want.author, want.rating, want.title, want.body, want.language)
        assert item.published_at == want.published_at
        assert (item.reply.body if item.reply else None) == want.reply_body
        assert (item.reply.published_at if item.reply else None) == want.reply_at


def test_schema_org_spider_extracts_exactly_the_pages_reviews():
    demo = demo_reviews(NOW)
    url = f"http://127.0.0.1:8000{SCHEMA_ORG_PATH}"
    got = extract.extract_reviews(demo_pages(NOW, "http://127.0.0.1:8000")[SCHEMA_ORG_PATH], url, spider="auto")
    assert [r.external_id for r in got] == [f"{url}#review-{r.id}" for r in demo.schema_org]
    for item, want in zip(got, demo.schema_org):
        assert (item.author, item.rating, item.title, item.body, item.published_at) == (
            want.author, want.rating, want.title, want.body, want.published_at)
