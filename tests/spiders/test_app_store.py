"""AppStoreSpider on our customer-reviews feed pages (XML and JSON) and on Apple's real feed of one app."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy.http import TextResponse

from spiders.sites.app_store import AppStoreSpider
from tests.spiders._pages import fingerprint, page_bytes

FEED = "https://itunes.apple.com/gb/rss/customerreviews/page=1/id=1555000222/sortby=mostrecent/"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def parse(body: bytes, url: str):
    spider = AppStoreSpider(url=url)
    response = TextResponse(url=url, body=body, encoding="utf-8")
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_xml_feed_reviews_with_times_versions_and_paging():
    spider, reviews, next_url = parse(page_bytes("app_store.xml"), FEED + "xml")
    assert [(r.external_id, r.rating, r.published_at, r.app_version) for r in reviews] == [
        ("9100000003", 1, utc(2024, 12, 5, 17, 15, 30), "5.2.0"),
        ("9100000002", 5, utc(2024, 12, 4, 15, 0), "5.1.3"),
        ("9100000001", 3, utc(2024, 12, 2, 6, 59, 59), "5.1.3"),
    ]
    assert (reviews[0].title, reviews[0].author) == ("Crashes on launch", "Maria K")
    assert reviews[1].body == "Does what it says & fast."  # the text form, not the HTML one
    assert reviews[2].body == "Fine, I guess.\nToo many ads."
    assert reviews[0].url == "https://apps.apple.com/gb/app/id1555000222?see-all=reviews"
    assert next_url == FEED.replace("page=1", "page=2") + "xml"
    assert not spider.problems


def test_json_feed_has_no_times_and_pages_stay_json():
    spider, reviews, next_url = parse(page_bytes("app_store.json"), FEED + "json")
    assert [(r.external_id, r.rating, r.published_at, r.app_version, r.author) for r in reviews] == [
        ("9100000003", 1, None, "5.2.0", "Maria K"),  # dated when first seen, by the store
        ("9100000002", 5, None, "5.1.3", "jt"),
        ("9100000001", 3, None, "5.1.3", "Ola N."),
    ]
    # Apple's own "next" link in the JSON form points to the XML form: the JSON form is kept.
    assert next_url == FEED.replace("page=1", "page=2") + "json"


def test_last_page_and_the_app_entry_of_older_feeds():
    body = page_bytes("app_store.xml").replace(b"page=1/xml</id>", b"page=2/xml</id>")
    _, _, next_url = parse(body, FEED.replace("page=1", "page=2") + "xml")
    assert next_url is None  # page 2 of 2
    app_entry = b"<entry><id>1555000222</id><title>Acme</title><im:name>Acme</im:name></entry>"
    body = page_bytes("app_store.xml").replace(b"<author><name>iTunes", app_entry + b"<author><name>iTunes", 1)
    _, reviews, _ = parse(body, FEED + "xml")
    assert [r.external_id for r in reviews] == ["9100000003", "9100000002", "9100000001"]


def test_options_build_the_feed_url():
    spider = AppStoreSpider(url="https://itunes.apple.com", options={"app_id": "id1555000222", "country": "GB"})
    assert spider.start_url() == FEED + "xml"


def swift_literals(text: str) -> list[str]:
    """The Swift `\"\"\"` literals of the test file: indentation of the closing quotes removed, `\\\\` unescaped."""
    found = []
    for body, indent in re.findall(r'return """\n(.*?)\n( *)"""', text, re.S):
        lines = [line[len(indent):] if line.startswith(indent) else line.lstrip(" ") for line in body.split("\n")]
        found.append("\n".join(lines).replace("\\\\", "\\"))
    return found


@pytest.mark.fixtures
def test_real_feed_xml_and_json(real_pages: Path):
    source = real_pages / "appstore" / "DayBySay__itunes-customerreviews-jp-id1404176564__xml+json-in-swift__2020-08.swift"
    xml, json_form = swift_literals(source.read_text(encoding="utf-8"))
    feed = "https://itunes.apple.com/jp/rss/customerreviews/page=1/id=1404176564/sortby=mostrecent/"

    spider, reviews, next_url = parse(xml.encode(), feed + "xml")
    assert len(reviews) == 50 and not spider.problems
    assert "".join(f"{r.rating:.0f}" for r in reviews) == "55514114541421153352214133135131451242414515233351"
    assert (reviews[0].external_id, reviews[0].published_at, reviews[0].app_version) == (
        "6310006838", utc(2020, 8, 12, 11, 6, 20), "3.5.0")
    assert (reviews[-1].external_id, reviews[-1].published_at, reviews[-1].app_version) == (
        "6180524864", utc(2020, 7, 10, 10, 52, 38), "3.3.15")
    assert all(r.published_at is not None for r in reviews)
    assert {r.app_version for r in reviews} == {"3.3.15", "3.3.17", "3.4.0", "3.4.1", "3.4.2", "3.4.3", "3.5.0"}
    assert fingerprint(reviews[0].body) == "8f5d0042f5e6" and fingerprint(reviews[0].author) == "e74b74eccee0"
    assert fingerprint(reviews[-1].body) == "16ad2d60682e"
    assert sum("\n" in r.body for r in reviews) == 26  # line breaks kept
    assert next_url == feed.replace("page=1", "page=2") + "xml"  # page 1 of 8

    spider, reviews, next_url = parse(json_form.encode(), feed + "json")
    assert len(reviews) == 50 and not spider.problems
    assert "".join(f"{r.rating:.0f}" for r in reviews) == "42115335221413313513145124241451523335133313125353"
    assert (reviews[0].external_id, reviews[0].app_version, reviews[-1].external_id) == ("6290024630", "3.4.3", "6123449936")
    assert all(r.published_at is None for r in reviews)  # the JSON form has no times
    assert fingerprint(reviews[0].body) == "a1e8399ee1cf" and fingerprint(reviews[-1].body) == "5cd16d0afe62"
    assert next_url == feed.replace("page=1", "page=2") + "json"
