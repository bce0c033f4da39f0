"""Trustpilot company pages: reviews from the Next.js data, else from the review cards in the HTML."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from parsel import Selector
from scrapy.http import HtmlResponse, Response, TextResponse
from w3lib.url import add_or_replace_parameter, url_query_parameter

from spiders.base import ReviewSpider, with_query
from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import (
    clean_line,
    clean_text,
    html_to_text,
    parse_datetime,
)

_REVIEW_ID_IN_URL = re.compile(r"/reviews/([0-9a-fA-F]{8,})")
_RATED_N = re.compile(r"Rated (\d(?:\.\d)?) out of 5")
_STAR_COUNT_CLASS = re.compile(r"\bcount-(\d)\b")
# An id that needs no escaping: "/reviews/" + id is then exactly what urljoin would build.
_PLAIN_ID = re.compile(r"[0-9A-Za-z_-]+")
# Per-review failures we count and survive (DESIGN §5.7); anything else is a bug and should surface.


class TrustpilotSpider(ReviewSpider):
    """Trustpilot company reviews (https://www.trustpilot.com/review/<domain>), newest first with `?sort=recency`.

    Reads the page's own reviews with the business reply; the "relevant reviews" teaser block is ignored.
    """

    name = "trustpilot"
    site_name = "Trustpilot"
    verified_on = "real saved pages (2024 and 2025 builds, a 2016 card, the Next.js data JSON)"
    hosts = (
        "trustpilot.com", "www.trustpilot.com", "uk.trustpilot.com", "de.trustpilot.com", "dk.trustpilot.com",
        "fr.trustpilot.com", "es.trustpilot.com", "it.trustpilot.com", "nl.trustpilot.com", "no.trustpilot.com",
        "se.trustpilot.com", "pl.trustpilot.com", "pt.trustpilot.com", "au.trustpilot.com", "ca.trustpilot.com",
    )

    @classmethod
    def normalize_url(cls, url: str) -> str:
        """Every language, newest first: Trustpilot's default is the visitor's language in relevance order."""
        wanted = {"sort": "recency"}
        if "languages" not in parse_qs(urlsplit(url).query):
            wanted["languages"] = "all"
        return with_query(url, wanted)

    @classmethod
    def sniff(cls, response: Response) -> bool:
        """True for a page carrying Trustpilot's review data (used by `extract --spider auto` on unknown hosts)."""
        if _page_props(response) is not None:
            return True
        return isinstance(response, HtmlResponse) and bool(
            response.css('article[data-service-review-card-paper] a[href*="/reviews/"]')
        )

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        props = _page_props(response)
        if props is not None and isinstance(props.get("reviews"), list):
            yield from self._reviews_from_json(response, props["reviews"])
            return
        if not isinstance(response, HtmlResponse):
            return
        if response.css("[data-service-review-card-paper]"):
            yield from self._reviews_from_cards(response)
        else:
            yield from self._reviews_from_2016_cards(response)

    def next_page(self, response: Response) -> str | None:
        link = response.css('a[data-pagination-button-next-link="true"]') if isinstance(response, HtmlResponse) else None
        if link:
            href = link.attrib.get("href")
            disabled = link.attrib.get("aria-disabled") == "true" or "disabled" in link.attrib.get("class", "")
            return None if disabled or not href else _keep_filters(response.url, response.urljoin(href))
        props = _page_props(response) or {}
        try:
            pagination = props["filters"]["pagination"]
            current, total = int(pagination["currentPage"]), int(pagination["totalPages"])
        except (KeyError, TypeError, ValueError):
            return None
        return add_or_replace_parameter(response.url, "page", str(current + 1)) if current < total else None

    # --- Next.js data (the complete source: ids, languages, replies) -----------------------------------------------

    def _reviews_from_json(self, response: Response, items: list[Any]) -> Iterator[ReviewItem]:
        # One urljoin per page, not per review (urljoin was ~15 % of parsing a 20-review page).
        review_base = response.urljoin("/reviews/")
        yield from self.read_each(items, lambda item: self._review_from_json(response, item, review_base))

    def _review_from_json(self, response: Response, item: dict[str, Any], review_base: str) -> ReviewItem | None:
        review_id = str(item.get("id") or "").strip()
        if not review_id:
            self.problem("trustpilot/missing_id")
            return None
        dates = item.get("dates") or {}
        published = self._date(dates.get("publishedDate"))
        reply = None
        if item.get("reply") and (item["reply"].get("message") or "").strip():
            reply = Reply(
                body=clean_text(item["reply"]["message"]),
                published_at=self._date(item["reply"].get("publishedDate")),
            )
        return ReviewItem(
            external_id=review_id,
            url=review_base + review_id if _PLAIN_ID.fullmatch(review_id) else response.urljoin(f"/reviews/{review_id}"),
            body=clean_text(item.get("text")),
            rating=self._rating(item.get("rating")),
            author=clean_line((item.get("consumer") or {}).get("displayName")),
            title=clean_line(item.get("title")),
            published_at=published,
            language=clean_line(item.get("language")),
            reply=reply,
            # The object as the site sent it (key order kept: stable for the same page, no sorting per review).
            snippet_hash=snippet_hash(json.dumps(item, ensure_ascii=False, check_circular=False)),
        )

    # --- HTML cards (when a page arrives without its data script) ---------------------------------------------------

    def _reviews_from_cards(self, response: Response) -> Iterator[ReviewItem]:
        cards = response.css("article[data-service-review-card-paper], div[data-service-review-card-paper]")
        # "Relevant reviews" teasers reuse the card marker but have no permalink and their own text marker.
        own = (card for card in cards if not card.css("[data-relevant-review-text-typography]"))
        yield from self.read_each(own, lambda card: self._review_from_card(response, card))

    def _review_from_card(self, response: Response, card: Selector) -> ReviewItem | None:
        review_id = _review_id(card.css('a[href*="/reviews/"]::attr(href)').get())
        if not review_id:
            self.problem("trustpilot/missing_id")
            return None
        rating = card.css("[data-service-review-rating]::attr(data-service-review-rating)").get()
        if rating is None:
            match = _RATED_N.search(card.css('img[alt^="Rated"]::attr(alt)').get() or "")
            rating = match.group(1) if match else None
        reply = None
        reply_text = card.css("[data-service-review-business-reply-text-typography]").get()
        if reply_text and html_to_text(reply_text):
            reply = Reply(
                body=html_to_text(reply_text),
                published_at=self._date(
                    card.css("time[data-service-review-business-reply-date-time-ago]::attr(datetime)").get()
                ),
            )
        body = card.css("[data-service-review-text-typography]").get()
        return ReviewItem(
            external_id=review_id,
            url=response.urljoin(f"/reviews/{review_id}"),
            body=html_to_text(body) if body else "",
            rating=self._rating(rating),
            author=clean_line(" ".join(card.css("[data-consumer-name-typography] ::text").getall())),
            title=clean_line(" ".join(card.css("[data-service-review-title-typography] ::text").getall())),
            published_at=self._date(card.css("time[data-service-review-date-time-ago]::attr(datetime)").get()),
            language=clean_line(card.css("[data-review-content]::attr(lang)").get()),
            reply=reply,
            snippet_hash=snippet_hash(card.get()),
        )

    def _reviews_from_2016_cards(self, response: Response) -> Iterator[ReviewItem]:
        """The pre-2019 layout (`div.review[data-reviewmid]`), still seen in old saved pages."""
        for card in response.css("div.review[data-reviewmid]"):
            review_id = (card.attrib.get("data-reviewmid") or "").strip()
            if not review_id:
                self.problem("trustpilot/missing_id")
                continue
            stars = _STAR_COUNT_CLASS.search(card.css(".star-rating::attr(class)").get() or "")
            body = card.css(".review-body").get()
            yield ReviewItem(
                external_id=review_id,
                url=response.urljoin(f"/reviews/{review_id}"),
                body=html_to_text(body) if body else "",
                rating=self._rating(stars.group(1) if stars else None),
                author=clean_line(" ".join(card.css(".user-review-name-link ::text").getall())),
                title=clean_line(" ".join(card.css(".review-title ::text").getall())),
                published_at=self._date(card.css("time::attr(datetime)").get()),
                snippet_hash=snippet_hash(card.get()),
            )

    # --- field helpers: bad values are counted, never raised -----------------------------------------------------

    def _date(self, value: Any) -> datetime | None:
        if not value:
            return None
        parsed = parse_datetime(value)
        if parsed is None:
            self.problem("trustpilot/bad_date")
        return parsed

    def _rating(self, value: Any) -> float | None:
        return self.checked_rating(value)


def _page_props(response: Response) -> dict[str, Any] | None:
    """`pageProps` with a `reviews` list, or None.

    Found in the page's `__NEXT_DATA__` script, or a JSON answer of the `/_next/data/<build>/review/<domain>.json`
    API (`{"pageProps": ...}`), or a saved JSON list of that API's review objects.
    """
    if not isinstance(response, TextResponse):
        return None
    raw = response.css("script#__NEXT_DATA__::text").get() if isinstance(response, HtmlResponse) else response.text
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, list) and data and all(isinstance(r, dict) and "id" in r and "rating" in r for r in data):
        return {"reviews": data}
    if not isinstance(data, dict):
        return None
    if "props" in data:
        data = data["props"] if isinstance(data["props"], dict) else {}
    page_props = data.get("pageProps")
    if not isinstance(page_props, dict) or not isinstance(page_props.get("reviews"), list):
        return None
    return page_props


def _keep_filters(current_url: str, next_url: str) -> str:
    """Some builds link page 2 as bare `?page=2`: keep our language and sort choice on the following pages."""
    for parameter in ("languages", "sort"):
        value = url_query_parameter(current_url, parameter)
        if value and not url_query_parameter(next_url, parameter):
            next_url = add_or_replace_parameter(next_url, parameter, value)
    return next_url


def _review_id(href: str | None) -> str | None:
    match = _REVIEW_ID_IN_URL.search(href or "")
    return match.group(1) if match else None
