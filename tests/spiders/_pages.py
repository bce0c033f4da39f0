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
