"""Amazon: a product's customer reviews from its review blocks (`div[data-hook=review]`)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar

from dateutil import parser as dateutil_parser
from parsel import Selector
from scrapy.http import HtmlResponse, Response

from spiders.base import ReviewSpider
from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, html_to_text

REVIEW_BLOCKS = "div[data-hook=review][id]"
# "5.0 out of 5 stars", "4,0 von 5 Sternen", "5つ星のうち4.0": the first number of the first pair is the score.
_SCORE = re.compile(r"(\d{1,2}(?:[.,]\d{1,3})?)\D{1,40}?(\d{1,2}(?:[.,]\d{1,3})?)")
_JAPANESE_SCORE = re.compile(r"(\d)つ星のうち(\d(?:[.,]\d)?)")
# "Reviewed in the United States on August 22, 2018" or just "August 22, 2018": the date after the last " on ".
_ENGLISH_DATE = re.compile(r"([A-Z][a-z]{2,8}\.? \d{1,2}, \d{4})\s*$")
_MARKETPLACES = ("com", "co.uk", "de", "fr", "it", "es", "ca", "com.au", "co.jp", "in", "nl", "pl", "se", "com.mx",
                 "com.br", "com.tr", "ae", "sg", "com.be")
_NOT_ICON_TEXT = "[not(ancestor::*[contains(concat(' ', normalize-space(@class), ' '), ' a-icon-alt ')])]"


class AmazonSpider(ReviewSpider):
    """Amazon customer reviews of a product: its reviews page, newest first
    (https://www.amazon.com/product-reviews/<ASIN>?sortBy=recent), or the product page (its top reviews only).

    Each review block gives its id, the reviewer's profile name, stars ("4.0 out of 5 stars"), title, date
    ("Reviewed in the United States on August 22, 2018"; English dates only, others are counted as unreadable) and
    the text; a review links to its own page. Amazon shows no seller replies to reviews. Pages follow the pager's
    "Next". Amazon answers crawlers with its "Robot Check" page more often than not: that is `blocked: amazon`.
    """

    name = "amazon"
    site_name = "Amazon"
    hosts = tuple(f"{prefix}amazon.{tld}" for tld in _MARKETPLACES for prefix in ("", "www."))
    verified_on: ClassVar[str | None] = "a real product page (2019, 8 reviews), every field"

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return isinstance(response, HtmlResponse) and bool(
            response.css(f"{REVIEW_BLOCKS} [data-hook=review-star-rating], {REVIEW_BLOCKS} .a-profile-name"))

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        if isinstance(response, HtmlResponse):
            yield from self.read_each(response.css(REVIEW_BLOCKS), lambda block: self._review(response, block))

    def next_page(self, response: Response) -> str | None:
        if not isinstance(response, HtmlResponse) or not response.css(REVIEW_BLOCKS):
            return None
        href = response.css("ul.a-pagination li.a-last:not(.a-disabled) a::attr(href)").get()
        return response.urljoin(href.strip()) if href and href.strip() else None

    def _review(self, response: HtmlResponse, block: Selector) -> ReviewItem | None:
        review_id = (block.attrib.get("id") or "").strip()
        if not review_id:
            self.problem("amazon/missing_id")
            return None
        text = block.css("[data-hook=review-collapsed]").get() or block.css("[data-hook=review-body]").get() or ""
        if not text:
            self.problem("amazon/missing_text")
        title = block.css("[data-hook=review-title]")
        return ReviewItem(
            external_id=review_id,
            url=response.urljoin(f"/gp/customer-reviews/{review_id}"),
            body=html_to_text(text),
            rating=self._rating(" ".join(block.css(
                "[data-hook=review-star-rating] .a-icon-alt ::text, [data-hook=cmps-review-star-rating] .a-icon-alt ::text"
            ).getall())),
            author=clean_line(" ".join(block.css(".a-profile-name ::text").getall())),
            title=clean_line(" ".join(title.xpath(f".//text(){_NOT_ICON_TEXT}").getall())) if title else None,
            published_at=self._date(clean_line(" ".join(block.css("[data-hook=review-date] ::text").getall()))),
            snippet_hash=snippet_hash(block.get()),
        )

    def _rating(self, text: str) -> float | None:
        japanese = _JAPANESE_SCORE.search(text)
        match = _SCORE.search(text)
        if japanese:
            score, scale = japanese.group(2), japanese.group(1)
        elif match:
            score, scale = match.groups()
        else:
            return self.checked_rating(None)
        return self.checked_rating(score.replace(",", "."), scale=float(scale.replace(",", ".")))

    def _date(self, text: str | None) -> datetime | None:
        match = _ENGLISH_DATE.search(text or "")
        if match:
            try:
                parsed = dateutil_parser.parse(match.group(1))
                return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)  # the marketplace's day
            except (ValueError, OverflowError):
                pass
        self.problem("amazon/bad_date")
        return None
