"""Ceneo.pl: product reviews from the server-rendered review cards of a product page."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parsel import Selector
from scrapy.http import HtmlResponse, Response

from spiders.base import ReviewSpider
from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, html_to_text, to_utc

REVIEW_CARDS = "div.user-post.user-post__card.js_product-review[data-entry-id]"
# "4,5/5", "5/5", "4.5 / 5": the score and the scale it is on.
# Bounded digit runs: with `\d+` a long run of digits and no "/" was cubic (2,000 digits took 0.6 s).
_SCORE = re.compile(r"(\d{1,6}(?:[.,]\d{1,6})?)\s*/\s*(\d{1,6}(?:[.,]\d{1,6})?)")
_REVIEW_PAGE = re.compile(r"/opinie-\d+$")
_LOCAL_TIME = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?\s*$")
# Pros and cons, appended to the text under the labels Ceneo itself shows.
_FEATURES = (("positives", "Zalety"), ("negatives", "Wady"))
_FEATURE_ITEM = "contains(concat(' ', normalize-space(@class), ' '), ' review-feature__item ')"


def _warsaw() -> tzinfo:
    """Ceneo prints Polish local time without an offset. Without a time-zone database, UTC is the fallback."""
    try:
        return ZoneInfo("Europe/Warsaw")
    except ZoneInfoNotFoundError:
        return timezone.utc


WARSAW = _warsaw()


class CeneoSpider(ReviewSpider):
    """Ceneo.pl product reviews (checked on one real review card of 2023; no whole real page yet).

    Configure a product page, https://www.ceneo.pl/<product number>, or its reviews tab,
    https://www.ceneo.pl/<product number>/opinie-1. Each review card gives its id, the reviewer's name, the score
    (4,5/5 becomes 4.5 stars), the date it was written (Polish time, stored as UTC) and the text, with the
    reviewer's pros and cons appended as "Zalety: ..." and "Wady: ...". A review links to the product's reviews
    tab. Ceneo shows no seller replies on these
    cards, so reviews have no reply. Pages follow the "next" link of the pager.
    """

    name = "ceneo"
    site_name = "Ceneo"
    hosts = ("ceneo.pl", "www.ceneo.pl")

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return isinstance(response, HtmlResponse) and bool(response.css(f"{REVIEW_CARDS} span.user-post__score-count"))

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        if not isinstance(response, HtmlResponse):
            return
        page_url = _product_page(response.url)
        yield from self.read_each(response.css(REVIEW_CARDS), lambda card: self._review(card, page_url))

    def next_page(self, response: Response) -> str | None:
        if not isinstance(response, HtmlResponse) or not response.css(REVIEW_CARDS):
            return None
        href = response.css("a.pagination__next::attr(href), link[rel=next]::attr(href), a[rel=next]::attr(href)").get()
        if not href or not href.strip():
            return None
        url = response.urljoin(href.strip())
        return None if url.split("#", 1)[0] == response.url.split("#", 1)[0] else url

    def _review(self, card: Selector, page_url: str) -> ReviewItem | None:
        review_id = (card.attrib.get("data-entry-id") or "").strip()
        if not review_id:
            self.problem("ceneo/missing_id")
            return None
        parts = [html_to_text(card.css("div.user-post__text").get() or "")]
        for kind, label in _FEATURES:
            features = self._features(card, kind)
            if features:
                parts.append(f"{label}: " + ", ".join(features))
        # The first <time> is when the review was written; the second, when the product was bought.
        written = card.css("span.user-post__published > time::attr(datetime)").get()
        return ReviewItem(
            external_id=review_id,
            url=page_url,
            body="\n\n".join(filter(None, parts)),
            rating=self._rating(" ".join(card.css("span.user-post__score-count ::text").getall())),
            author=clean_line(" ".join(card.css("span.user-post__author-name ::text").getall())),
            published_at=self._date(written),
            language="pl",
            snippet_hash=snippet_hash(card.get()),
        )

    def _features(self, card: Selector, kind: str) -> list[str]:
        title = card.css(f"div.review-feature__title--{kind}")
        if not title:
            return []
        # Items follow their title; some layouts wrap each group in a column, so look in the title's parent too.
        items = title[0].xpath(f"following-sibling::*[{_FEATURE_ITEM}]") or title[0].xpath(f"../*[{_FEATURE_ITEM}]")
        return [text for text in (clean_line(" ".join(item.css("::text").getall())) for item in items) if text]

    def _rating(self, text: str) -> float | None:
        match = _SCORE.search(text)
        if not match:
            self.problem("ceneo/missing_rating" if not text.strip() else "ceneo/bad_rating")
            return None
        score, scale = (float(number.replace(",", ".")) for number in match.groups())
        rating = score * 5 / scale if scale else 0.0
        if not 1 <= rating <= 5:
            self.problem("ceneo/bad_rating")
            return None
        return round(rating, 2)

    def _date(self, value: str | None) -> datetime | None:
        """"2024-03-15 14:22:05" in Warsaw time → UTC."""
        match = _LOCAL_TIME.match(value or "")
        if match:
            year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
            try:
                return to_utc(datetime(year, month, day, hour, minute, second, tzinfo=WARSAW))
            except ValueError:  # "2024-02-30", "25:00"
                pass
        self.problem("ceneo/bad_date")
        return None


def _product_page(url: str) -> str:
    """The product's reviews tab: the same for every review, whichever page of reviews it is on today."""
    path = _REVIEW_PAGE.sub("", url.split("#", 1)[0].split("?", 1)[0])
    return f"{path}#tab=reviews"
