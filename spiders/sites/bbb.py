"""BBB (Better Business Bureau): customer reviews and complaints from its JSON endpoints and profile pages."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from scrapy.http import HtmlResponse, Response, TextResponse
from w3lib.url import add_or_replace_parameter

from spiders.base import ReviewSpider
from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime

_PAGE_PARAMETER = re.compile(r"(?<=[?&])page=\d*")
_STATE_START = re.compile(r"window\.__PRELOADED_STATE__\s*=\s*")
_US_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")
# Where the profile page's state keeps each list: (state key, kind of item).
_STATE_LISTS = (("customerReviews", "review"), ("complaints", "complaint"))


class BbbSpider(ReviewSpider):
    """BBB customer reviews and complaints (documented structure only: no saved real page was checked).

    Configure either the JSON endpoint the profile page loads,
    https://www.bbb.org/api/businessprofile/customerreviews?page=1&pageSize=10&businessId=<id>&bbbId=<id>&sort=reviewDate%20desc
    (or .../api/businessprofile/complaints?... for complaints), or the profile page itself,
    https://www.bbb.org/us/<state>/<city>/profile/<category>/<business>/customer-reviews, whose embedded state
    (window.__PRELOADED_STATE__) carries the same review list.

    Reviews: id, stars, reviewer's display name, date, text and the business's response as the reply.
    Complaints have no stars: the complaint type is the title and the status (Resolved, Answered...) is appended
    to the text, so a status change is seen as an edit. Pages follow `page=N` up to `totalPages`.
    """

    name = "bbb"
    site_name = "BBB"
    hosts = ("bbb.org", "www.bbb.org")

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return any(True for _ in _item_lists(response))

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        page_url = response.url.split("#", 1)[0]
        for kind, items, _ in _item_lists(response):
            read = self._review if kind == "review" else self._complaint  # complaint ids are prefixed: no clash
            yield from self.read_each(items, lambda item: read(item, page_url))

    def next_page(self, response: Response) -> str | None:
        for _, _, paging in _item_lists(response):
            try:
                page = int(paging.get("page") or 1)
                total_pages = int(paging["totalPages"])
            except (KeyError, TypeError, ValueError):
                return None
            return _with_page(response.url.split("#", 1)[0], page + 1) if page < total_pages else None
        return None

    def _review(self, item: dict[str, Any], page_url: str) -> ReviewItem | None:
        review_id = _id(item)
        if not review_id:
            self.problem("bbb/missing_id")
            return None
        return ReviewItem(
            external_id=review_id,
            url=page_url,
            body=_text(item.get("text") or item.get("extendedText")),
            rating=self._rating(item.get("reviewStarRating")),
            author=_text_line(item.get("displayName")),
            published_at=self._date(item.get("date")),
            reply=self._reply(item.get("businessResponse") or item.get("companyResponse")),
            snippet_hash=snippet_hash(json.dumps(item, sort_keys=True, ensure_ascii=False)),
        )

    def _complaint(self, item: dict[str, Any], page_url: str) -> ReviewItem | None:
        complaint_id = _id(item)
        if not complaint_id:
            self.problem("bbb/missing_id")
            return None
        status = _text_line(item.get("status"))
        parts = [_text(item.get("text")), f"Status: {status}" if status else ""]
        return ReviewItem(
            # Prefixed: a complaint and a review of one business may share a number.
            external_id=f"complaint-{complaint_id}",
            url=page_url,
            body="\n\n".join(filter(None, parts)),
            title=_text_line(item.get("type") or item.get("complaintType")),
            published_at=self._date(item.get("date")),
            reply=self._reply(item.get("businessResponse") or item.get("companyResponse")),
            snippet_hash=snippet_hash(json.dumps(item, sort_keys=True, ensure_ascii=False)),
        )

    def _reply(self, value: Any) -> Reply | None:
        """The business's response: an object with its text and date, or just the text."""
        if isinstance(value, dict):
            text, date = value.get("text") or value.get("extendedText"), value.get("date")
        else:
            text, date = value, None
        body = clean_text(text) if isinstance(text, str) else ""
        if not body:
            return None
        return Reply(body=body, published_at=self._date(date) if date else None)

    def _rating(self, value: Any) -> float | None:
        return self.checked_rating(value)

    def _date(self, value: Any) -> datetime | None:
        """ISO text, "03/15/2024", or an object of year/month/day (BBB prints days, not moments: UTC midnight)."""
        parsed = None
        if isinstance(value, dict):
            try:
                parsed = datetime(int(value["year"]), int(value["month"]), int(value["day"]), tzinfo=timezone.utc)
            except (KeyError, TypeError, ValueError):
                parsed = None
        elif isinstance(value, str):
            us_date = _US_DATE.match(value)
            if us_date:
                month, day, year = map(int, us_date.groups())
                try:
                    parsed = datetime(year, month, day, tzinfo=timezone.utc)
                except ValueError:
                    parsed = None
            else:
                parsed = parse_datetime(value)
        if parsed is None:
            self.problem("bbb/bad_date")
        return parsed


def _with_page(url: str, page: int) -> str:
    """`url` asking for `page`; the rest of the query stays byte for byte (w3lib would turn %20 into +)."""
    if _PAGE_PARAMETER.search(url):
        return _PAGE_PARAMETER.sub(f"page={page}", url, count=1)
    return add_or_replace_parameter(url, "page", str(page))


def _text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _text_line(value: Any) -> str | None:
    return clean_line(value) if isinstance(value, str) else None


def _id(item: dict[str, Any]) -> str:
    value = item.get("id")
    return "" if value is None or isinstance(value, bool) else str(value).strip()


def _item_lists(response: Response) -> Iterator[tuple[str, list[Any], dict[str, Any]]]:
    """(kind, items, paging object) for each list of reviews or complaints in a JSON answer or a profile page."""
    if not isinstance(response, TextResponse):
        return
    if isinstance(response, HtmlResponse):
        state = _preloaded_state(response.text)
        profile = state.get("businessProfile") if isinstance(state, dict) else None
        if not isinstance(profile, dict):
            return
        for key, kind in _STATE_LISTS:
            block = profile.get(key)
            if isinstance(block, dict) and isinstance(block.get("items"), list):
                yield kind, block["items"], block
        return
    try:
        data = json.loads(response.text)
    except (ValueError, RecursionError):
        return
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or not data["items"]:
        return
    items = data["items"]
    if not all(isinstance(item, dict) and "id" in item and "text" in item for item in items):
        return
    if all("reviewStarRating" in item for item in items):
        yield "review", items, data
    elif "/complaints" in response.url or all("status" in item for item in items):
        yield "complaint", items, data


def _preloaded_state(text: str) -> Any:
    """The object assigned to window.__PRELOADED_STATE__ in a profile page's script, or None."""
    match = _STATE_START.search(text)
    if not match:
        return None
    try:
        state, _ = json.JSONDecoder(strict=False).raw_decode(text, match.end())
    except (ValueError, RecursionError):
        return None
    return state
