"""Skroutz.gr: shop and product reviews from the official API v3 (JSON)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from scrapy.http import Response
from w3lib.url import add_or_replace_parameter

from spiders.base import ReviewSpider, json_document
from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime

SITE = "https://www.skroutz.gr"
_API_PATH = re.compile(r"/(shops|skus)/(\d+)/reviews\b")
# Product reviews tag aspects of the product; the labels are Skroutz's own three groups, in Greek like the reviews.
_SENTIMENT_LABELS = (("positive", "Θετικά"), ("mediocre", "Μέτρια"), ("negative", "Αρνητικά"))


class SkroutzSpider(ReviewSpider):
    """Skroutz.gr reviews from the API v3: a shop's (https://api.skroutz.gr/shops/<id>/reviews) or a product's
    (https://api.skroutz.gr/skus/<id>/reviews); pages follow `meta.pagination` with `?page=N`.

    Shop reviews: text, stars, the reasons the buyer ticked (appended to the text) and the shop's reply. Product
    reviews: text, stars and the aspects tagged positive / mediocre / negative (appended to the text). The API
    names no reviewer, only a user id, so reviews have no author. The API answers only requests that carry an
    OAuth access token, which this spider does not send yet: saved answers are read with `repwatch extract`.
    """

    name = "skroutz"
    site_name = "Skroutz"
    verified_on = "real API v3 answers (shop and product reviews, 2017)"
    hosts = ("api.skroutz.gr",)

    @classmethod
    def sniff(cls, response: Response) -> bool:
        data = _answer(response)
        return data is not None and isinstance((data.get("meta") or {}).get("pagination"), dict)

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        data = _answer(response)
        if data is None:
            return
        page_url = _site_page(response.url)
        yield from self.read_each(data["reviews"], lambda item: self._review(item, page_url))

    def next_page(self, response: Response) -> str | None:
        data = _answer(response) or {}
        try:
            pagination = data["meta"]["pagination"]
            page, total_pages = int(pagination["page"]), int(pagination["total_pages"])
        except (KeyError, TypeError, ValueError):
            return None
        return add_or_replace_parameter(response.url, "page", str(page + 1)) if page < total_pages else None

    def _review(self, item: dict[str, Any], page_url: str) -> ReviewItem | None:
        review_id = str(item.get("id") or "").strip()
        if not review_id:
            self.problem("skroutz/missing_id")
            return None
        parts = [clean_text(item.get("review"))]
        reasons = [clean_line(reason) for reason in item.get("reasons") or []]
        if any(reasons):
            parts.append("Λόγοι: " + "; ".join(filter(None, reasons)))
        sentiments = item.get("sentiments") or {}
        for key, label in _SENTIMENT_LABELS:
            aspects = [clean_line(aspect) for aspect in sentiments.get(key) or []]
            if any(aspects):
                parts.append(f"{label}: " + ", ".join(filter(None, aspects)))
        return ReviewItem(
            external_id=review_id,
            url=page_url,
            body="\n\n".join(filter(None, parts)),
            rating=self._rating(item.get("rating")),
            published_at=self._date(item.get("created_at")),
            reply=self._reply(item.get("shop_reply")),
            snippet_hash=snippet_hash(json.dumps(item, sort_keys=True, ensure_ascii=False)),
        )

    def _reply(self, value: Any) -> Reply | None:
        """`shop_reply`: null in every saved answer; taken as text, or an object with its text and time."""
        if isinstance(value, dict):
            text = value.get("text") or value.get("reply") or value.get("body") or value.get("message")
            published = value.get("created_at") or value.get("updated_at")
        else:
            text, published = value, None
        body = clean_text(text) if isinstance(text, str) else ""
        return Reply(body=body, published_at=self._date(published) if published else None) if body else None

    def _rating(self, value: Any) -> float | None:
        return self.checked_rating(value)

    def _date(self, value: Any) -> datetime | None:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            self.problem("skroutz/bad_date")
        return parsed


def _answer(response: Response) -> dict[str, Any] | None:
    """The API answer (`{"reviews": [...], "meta": {...}}`), or None for anything else."""
    data = json_document(response)
    if not isinstance(data, dict) or not isinstance(data.get("reviews"), list):
        return None
    reviews = data["reviews"]
    if not all(isinstance(r, dict) and "id" in r and "rating" in r and "review" in r for r in reviews):
        return None
    return data


def _site_page(api_url: str) -> str:
    """The public page of the shop or product an API URL asks about (the API URL needs a token to open)."""
    match = _API_PATH.search(api_url)
    if not match:
        return api_url
    kind, number = match.groups()
    return f"{SITE}/shop/{number}" if kind == "shops" else f"{SITE}/s/{number}"
