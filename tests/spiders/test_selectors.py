"""SelectorsSpider: a site described in config.yaml only; its options are checked when the config is validated."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from monitor.config import ConfigError, parse_config
from spiders.generic.selectors import SelectorOptions, SelectorsSpider
from tests.spiders._pages import html_response, page_bytes

URL = "https://kettle-corner.example/guestbook?p=1"
CSS_OPTIONS = {
    "review": "article.entry",
    "id": "./@data-entry",
    "author": ".who::text",
    "rating": "span.score::text",
    "rating_pattern": r"(\d+)/(\d+)",
    "title": "h3",
    "body": "div.text",
    "date": "span.when::text",
    "date_format": "%d.%m.%Y %H:%M",
    "reply": "div.owner-answer",
    "next": "a.older::attr(href)",
}
XPATH_OPTIONS = {
    "review": "//article[contains(@class, 'entry')]",
    "author": "./p/span[@class='who']",
    "rating": "./p/span[@class='score']/text()",
    "rating_scale": 10,
    "body": "./div[@class='text']//text()",
    "date": "./p/span[@class='when']",
    "date_format": "%d.%m.%Y %H:%M",
    "next": "//a[@class='older']",
}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def parse(options: dict, body: bytes | None = None, url: str = URL):
    spider = SelectorsSpider(url=url, options=options)
    response = html_response(body or page_bytes("selectors_guestbook.html"), url)
    return spider, list(spider.parse_reviews(response)), spider.next_page(response)


def test_css_selectors_with_attribute_id_pattern_date_format_and_reply():
    spider, reviews, next_url = parse(CSS_OPTIONS)

    assert [(r.external_id, r.author, r.rating, r.published_at, r.title) for r in reviews] == [
        ("g-301", "Ines B.", 1.5, utc(2024, 3, 15, 14, 5), "Burnt toast twice"),
        ("g-298", "Theo", 4.5, utc(2024, 3, 2, 9, 30), "Lovely scones"),
        ("g-290", "Anon", 5, utc(2024, 2, 28, 18), "Fine"),
    ]
    assert reviews[0].body == "Toast was burnt & the tea cold.\n\nNice view though."
    assert reviews[1].body == "Warm scones,\nreal clotted cream."
    assert reviews[0].reply.body == "Sorry Ines, the toaster has been replaced."
    assert reviews[0].reply.published_at is None
    assert reviews[1].reply is None and reviews[2].reply is None
    assert all(r.url == URL for r in reviews)
    assert next_url == "https://kettle-corner.example/guestbook?p=2"
    assert not spider.problems


def test_xpath_selectors_without_an_id_use_a_stable_content_hash():
    spider, reviews, next_url = parse(XPATH_OPTIONS)

    assert [(r.author, r.rating, r.published_at) for r in reviews] == [
        ("Ines B.", 1.5, utc(2024, 3, 15, 14, 5)), ("Theo", 4.5, utc(2024, 3, 2, 9, 30)), ("Anon", 5, utc(2024, 2, 28, 18)),
    ]
    assert all(r.external_id.startswith("sha256:") for r in reviews)
    assert len({r.external_id for r in reviews}) == 3
    assert [r.external_id for r in parse(XPATH_OPTIONS)[1]] == [r.external_id for r in reviews]  # stable
    assert reviews[1].body == "Warm scones,\nreal clotted cream."  # text nodes: one per line
    assert next_url == "https://kettle-corner.example/guestbook?p=2"  # an <a> element: its href
    assert not spider.problems


def test_bad_fields_are_counted_not_fatal():
    body = (
        page_bytes("selectors_guestbook.html")
        .replace(b"3/10", b"n/a")
        .replace(b"02.03.2024 09:30", b"last week")
        .replace(b' data-entry="g-290"', b"")
        .replace(b'<div class="text">Nothing to add.</div>', b"")
    )
    spider, reviews, _ = parse(CSS_OPTIONS, body)
    assert [(r.external_id, r.rating, r.published_at) for r in reviews] == [
        ("g-301", None, utc(2024, 3, 15, 14, 5)), ("g-298", 4.5, None), (reviews[2].external_id, 5, utc(2024, 2, 28, 18)),
    ]
    assert reviews[2].external_id.startswith("sha256:") and reviews[2].body == ""  # stars and a title still count
    assert spider.problems == {"selectors/bad_rating": 1, "selectors/bad_date": 1, "selectors/missing_id": 1}


def test_minimal_options_and_free_text_dates():
    spider, reviews, next_url = parse({"review": "article", "body": "div.text", "date": "span.when::text"},
                                      page_bytes("selectors_guestbook.html").replace(b"15.03.2024 14:05", b"2024-03-15T14:05:00+01:00"))
    assert len(reviews) == 3 and reviews[0].rating is None
    assert reviews[0].published_at == utc(2024, 3, 15, 13, 5)
    # Free text is read month first, as dateutil does: a site that writes day.month needs `date_format`.
    assert reviews[1].published_at == utc(2024, 2, 3, 9, 30)
    assert next_url is None  # no `next` configured
    assert not spider.problems


def test_options_are_validated():
    with pytest.raises(ValidationError) as caught:
        SelectorOptions.model_validate({"review": "div.review["})
    messages = {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}
    assert "not a valid CSS selector ('div.review[')" in messages["review"]
    assert messages["body"] == "Field required"
    bad = {
        "author": ".//span[",
        "rating_pattern": "(\\d+",
        "date_format": "dd.mm.yyyy",
        "review": "article::text",
        "colour": "blue",
    }
    with pytest.raises(ValidationError) as caught:
        SelectorOptions.model_validate({"body": "p", **bad})
    assert {e["loc"][0] for e in caught.value.errors()} == set(bad)


def test_invalid_selectors_are_rejected_by_config_check():
    text = """
businesses:
  - name: Kettle Corner
    sources:
      - name: kettle-guestbook
        kind: selectors
        url: https://kettle-corner.example/guestbook
        options:
          review: "article.entry["
          body: div.text
          next: ".//a[@class='older'"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    (problem,) = caught.value.problems
    assert problem.startswith("source kettle-guestbook: options.review: not a valid CSS selector ('article.entry[')")
    assert "options.next: not a valid XPath (\".//a[@class='older'\")" in problem

    good = parse_config(text.replace('"article.entry["', "article.entry").replace(".//a[@class='older'\"", ".//a[@class='older']\""), env={})
    ((_, source),) = good.sources()
    assert SelectorsSpider(url=source.url, options=source.options).options.review == "article.entry"


def test_docstring_example_is_a_valid_source():
    import textwrap

    import yaml

    example = SelectorsSpider.__doc__.split("Example source in config.yaml:", 1)[1]
    (source,) = yaml.safe_load(textwrap.dedent(example))
    spider = SelectorsSpider(url=source["url"], options=source["options"])
    reviews = list(spider.parse_reviews(html_response("selectors_guestbook.html", source["url"])))
    assert [(r.external_id, r.rating) for r in reviews] == [("g-301", 1.5), ("g-298", 4.5), ("g-290", 5)]
