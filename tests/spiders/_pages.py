"""Our hand-written test pages (tests/spiders/pages/) and offline responses built from them."""
from __future__ import annotations

import hashlib
from pathlib import Path

from scrapy.http import HtmlResponse

PAGES = Path(__file__).parent / "pages"


def page_bytes(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def html_response(name_or_body: str | bytes, url: str) -> HtmlResponse:
    body = name_or_body if isinstance(name_or_body, bytes) else page_bytes(name_or_body)
    return HtmlResponse(url=url, body=body, encoding="utf-8")


def fingerprint(text: str | None) -> str:
    """A short hash that stands for a real reviewer's name or words: tests check them exactly without copying them."""
    return hashlib.sha256((text or "").encode()).hexdigest()[:12]


def extract_survives(body: bytes, url: str, spider: str) -> None:
    """Damaged input may be refused (blocked, or no spider knows it); whatever is extracted must be a valid review."""
    from spiders.extract import Blocked, extract_reviews

    try:
        reviews = extract_reviews(body, url, spider=spider)
    except Blocked:
        return
    except ValueError as error:
        assert "no spider recognises" in str(error)
        return
    for review in reviews:
        assert review.external_id and review.external_id.strip() == review.external_id
        assert review.rating is None or 1 <= review.rating <= 5
        assert review.published_at is None or review.published_at.utcoffset().total_seconds() == 0
        review.to_json().encode("utf-8")  # printable as a JSON line
