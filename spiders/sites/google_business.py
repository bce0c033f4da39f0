"""Google Business Profile: the owner's own Google reviews through the Business Profile API (OAuth 2.0)."""
from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import scrapy
from pydantic import Field, field_validator
from scrapy.http import Response
from w3lib.url import add_or_replace_parameter, url_query_parameter

from spiders.base import ReviewSpider, SourceOptions, json_document
from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.oauth import (
    GOOGLE_AUTH_URL,
    GOOGLE_TOKEN_URL,
    StoredToken,
    TokenError,
    google_token_path,
    load_token,
    read_token_answer,
    refresh_form,
    save_token,
)
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime

STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}
PAGE_SIZE = "50"  # the API's largest page
# Where the owner reads and answers the reviews: the API gives no public link to one review.
REVIEWS_PAGE = "https://business.google.com/reviews"
_FRACTION = re.compile(r"(\.\d{6})\d+")  # RFC 3339 with nanoseconds; Python reads microseconds
_API_ERRORS = (400, 401, 403, 404, 429, 503)


class GoogleBusinessOptions(SourceOptions):
    """client_id / client_secret of the owner's OAuth client (Google Cloud console, type "Desktop app")."""

    client_id: str | None = Field(None, description="OAuth client id (`${GOOGLE_CLIENT_ID}`)")
    client_secret: str | None = Field(None, description="OAuth client secret (`${GOOGLE_CLIENT_SECRET}`)")
    token_url: str = Field(GOOGLE_TOKEN_URL, description="OAuth token endpoint")
    auth_url: str = Field(GOOGLE_AUTH_URL, description="OAuth consent page (`repwatch auth google`)")

    @field_validator("token_url", "auth_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/]+", url):
            raise ValueError(f"must be an http:// or https:// URL, got {url!r}")
        return url


class GoogleBusinessSpider(ReviewSpider):
    """The owner's own Google reviews through the Google Business Profile API (not scraped: Google's API for the
    business's owner). Configure the location's reviews,
    https://mybusiness.googleapis.com/v4/accounts/<account id>/locations/<location id>/reviews, with the OAuth
    client's `client_id` and `client_secret` in `options`, then run `repwatch auth google` once.

    Each review gives its id, stars (starRating ONE-FIVE), the comment (none for stars only), the reviewer's name,
    its creation time, and the owner's reply with its time; newest updated first, all pages (pageToken). An
    expired access token is refreshed and the request retried; a revoked authorisation fails the source with one
    line. `repwatch reply REVIEW_ID --text-file F` answers a review (updateReply).
    """

    name = "google_business"
    site_name = "Google"
    hosts = ("mybusiness.googleapis.com", "oauth2.googleapis.com")
    verified_on: ClassVar[str | None] = None  # written from Google's API reference; no real answer checked
    Options = GoogleBusinessOptions
    handle_httpstatus_list = list(_API_ERRORS)
    options: GoogleBusinessOptions
    token: StoredToken

    @classmethod
    def sniff(cls, response: Response) -> bool:
        reviews = (_answer(response) or {}).get("reviews")
        return isinstance(reviews, list) and bool(reviews) and all(isinstance(r, dict) and "starRating" in r
                                                                   for r in reviews)

    # --- the API, with its token --------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if not (self.options.client_id and self.options.client_secret):
            self._fail("options.client_id and options.client_secret are needed (the OAuth client of the owner)")
            return
        token = load_token(self._token_path())
        if token is None:
            self._fail(f"not authorised with Google yet: run `repwatch auth google --source {self.source}`")
            return
        self.token = token
        first = self.url if url_query_parameter(self.url, "pageSize") else add_or_replace_parameter(
            self.url, "pageSize", PAGE_SIZE)
        yield self._api_request(first, 1) if token.usable() else self._refresh_request(first, 1)

    def _token_path(self) -> Path:
        return google_token_path(self.crawler.settings.get("REPWATCH_DATA_DIR") or "data")

    def _api_request(self, url: str, page: int, *, refreshed: bool = False) -> scrapy.Request:
        return scrapy.Request(
            url,
            headers={"Authorization": f"Bearer {self.token.access_token}", "Accept": "application/json"},
            callback=self.parse,
            errback=self.fetch_failed,
            dont_filter=refreshed,  # the same URL again, now with a fresh token
            # An owner's API, not pages for crawlers: no robots.txt; and nobody's answers kept in the page cache.
            meta={**self.page_meta(page), "dont_cache": True, "dont_obey_robotstxt": True, "refreshed": refreshed},
        )

    def _refresh_request(self, then_url: str, page: int) -> scrapy.Request:
        assert self.options.client_id and self.options.client_secret
        return scrapy.FormRequest(
            self.options.token_url,
            formdata=refresh_form(self.options.client_id, self.options.client_secret, self.token.refresh_token),
            callback=self._refreshed,
            errback=self.fetch_failed,
            cb_kwargs={"then_url": then_url, "page": page},
            dont_filter=True,
            meta={"dont_cache": True, "dont_obey_robotstxt": True, "handle_httpstatus_all": True},
        )

    def _refreshed(self, response: Response, then_url: str, page: int) -> Iterator[scrapy.Request]:
        try:
            self.token = read_token_answer(response.status, response.body, self.token)
        except TokenError as exc:
            self._fail(str(exc))
            return
        save_token(self._token_path(), self.token)
        self.stat("token_refreshes")
        yield self._api_request(then_url, page, refreshed=True)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[ReviewItem | scrapy.Request]:
        page = response.meta.get("page", 1)
        if response.status == 401 and not response.meta.get("refreshed"):
            return iter([self._refresh_request(response.url, page)])  # the access token expired: refresh, retry
        if response.status in _API_ERRORS:
            self._fail(self._api_error(response))
            return iter(())
        return (
            self._api_request(item.url, item.meta.get("page", page + 1)) if isinstance(item, scrapy.Request) else item
            for item in self._parse_page(response)
        )

    def _api_error(self, response: Response) -> str:
        error = (_answer(response) or {}).get("error")
        detail = ""
        if isinstance(error, dict):
            detail = clean_line(f"{error.get('status') or ''}: {error.get('message') or ''}".strip(": ")) or ""
        what = {
            401: "Google refused a freshly refreshed access token",
            429: "rate-limited by the Google Business Profile API after the retries",
            503: "the Google Business Profile API is unavailable after the retries",
        }.get(response.status, "the Google Business Profile API refused the request")
        return f"{what} (HTTP {response.status}{', ' + detail[:200] if detail else ''}) at {response.url}"

    def _fail(self, message: str) -> None:
        self.stat("fetch_errors")
        crawler = getattr(self, "crawler", None)
        if crawler is not None and crawler.stats is not None:
            crawler.stats.set_value("repwatch/last_error", message)

    # --- the answer ---------------------------------------------------------------------------------------------

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        reviews = (_answer(response) or {}).get("reviews")
        if isinstance(reviews, list):
            yield from self.read_each(reviews, self._review)

    def next_page(self, response: Response) -> str | None:
        token = (_answer(response) or {}).get("nextPageToken")
        return add_or_replace_parameter(response.url, "pageToken", token) if isinstance(token, str) and token else None

    def _review(self, item: dict[str, Any]) -> ReviewItem | None:
        review_id = str(item.get("reviewId") or str(item.get("name") or "").rpartition("/")[2]).strip()
        if not review_id:
            self.problem("google_business/missing_id")
            return None
        stars = item.get("starRating")
        rating = STARS.get(stars) if isinstance(stars, str) else None
        if rating is None:
            self.problem("google_business/missing_rating")
        reviewer = item.get("reviewer") or {}
        return ReviewItem(
            external_id=review_id,
            url=REVIEWS_PAGE,
            body=clean_text(item.get("comment")) if isinstance(item.get("comment"), str) else "",
            rating=rating,
            author=clean_line(reviewer.get("displayName")) if isinstance(reviewer, dict) else None,
            published_at=self._date(item.get("createTime")),
            reply=self._reply(item.get("reviewReply")),
            snippet_hash=snippet_hash(json.dumps(item, sort_keys=True, ensure_ascii=False)),
        )

    def _reply(self, value: Any) -> Reply | None:
        if not isinstance(value, dict) or not isinstance(value.get("comment"), str):
            return None
        body = clean_text(value["comment"])
        return Reply(body, _rfc3339(value.get("updateTime"))) if body else None

    def _date(self, value: Any) -> datetime | None:
        parsed = _rfc3339(value)
        if parsed is None:
            self.problem("google_business/bad_date")
        return parsed


def _rfc3339(value: Any) -> datetime | None:
    return parse_datetime(_FRACTION.sub(r"\1", value)) if isinstance(value, str) else None


def _answer(response: Response) -> dict[str, Any] | None:
    """The API's JSON object (reviews or an error), or None for anything else."""
    data = json_document(response)
    return data if isinstance(data, dict) else None
