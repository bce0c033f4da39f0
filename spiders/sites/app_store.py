"""Apple App Store: an app's customer reviews in one country, from Apple's customer-reviews feed (XML or JSON)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal

from parsel import Selector
from pydantic import Field
from scrapy.http import Response

from spiders.base import SourceOptions
from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime
from spiders.sites._api import ApiSpider, json_answer

_FEED_PATH = re.compile(r"/(?P<country>[a-z]{2})/rss/customerreviews/(?:.*/)?id=(?P<app>\d+)", re.I)
_PAGE = re.compile(r"/page=(\d+)", re.I)
NS = {"a": "http://www.w3.org/2005/Atom", "im": "http://itunes.apple.com/rss"}
LAST_PAGE = 10  # Apple serves at most 10 pages of 50 reviews


class AppStoreOptions(SourceOptions):
    app_id: str | None = Field(None, pattern=r"^(id)?\d+$", description="the app's numeric id (from its App Store URL)")
    country: str = Field("us", pattern=r"^[a-zA-Z]{2}$", description="the store's two-letter country code")
    form: Literal["xml", "json"] = Field("xml", description="xml (each review's time) or json (no times)")


class AppStoreSpider(ApiSpider):
    """App Store reviews of one app in one country's store, newest first, from Apple's customer-reviews feed:
    url https://itunes.apple.com with `options.app_id` and `options.country` (or the feed's own URL,
    https://itunes.apple.com/<country>/rss/customerreviews/page=1/id=<app id>/sortby=mostrecent/xml), all its
    pages (page=1 … the `last` link's page, at most 10 of 50 reviews).

    Each review: stars, title, text, author, the app version it was written on, and its time. The XML form (the
    default) carries each review's time (`updated`); the JSON form (`options.form: json`) has none, so its reviews
    are dated when repwatch first saw them.
    """

    name = "app_store"
    site_name = "App Store"
    hosts = ("itunes.apple.com",)
    Options = AppStoreOptions
    options: AppStoreOptions
    verified_on = "Apple's real feed, XML and JSON (jp, 2020: 50 + 50 reviews)"

    def start_url(self) -> str:
        options = self.options
        if options.app_id is None:
            return self.url
        app = options.app_id.removeprefix("id")
        return (f"{self.url.rstrip('/')}/{options.country.lower()}/rss/customerreviews/page=1/id={app}"
                f"/sortby=mostrecent/{options.form}")

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return bool(_FEED_PATH.search(response.url)) and bool(
            b"im:rating" in response.body[:200_000] or b'"im:rating"' in response.body[:200_000])

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        app_page = self._review_page(response.url)
        data = json_answer(response) if response.body.lstrip()[:1] == b"{" else None
        if isinstance(data, dict):
            entries = (data.get("feed") or {}).get("entry") or []
            if isinstance(entries, dict):
                entries = [entries]  # a page of one review
            yield from self.read_each(entries, lambda entry: self._json_entry(entry, app_page))
            return
        feed = Selector(text=response.text, type="xml")
        feed.register_namespace("a", NS["a"])
        feed.register_namespace("im", NS["im"])
        yield from self.read_each(feed.xpath("/a:feed/a:entry"), lambda entry: self._xml_entry(entry, app_page))

    def next_page(self, response: Response) -> str | None:
        """The next page=N of the same form (the JSON form's own links point to the XML form)."""
        match = _PAGE.search(response.url)
        page = int(match.group(1)) if match else 1
        last = _last_page(response)
        if page >= min(last, LAST_PAGE) or not any(True for _ in self.parse_reviews(response)):
            return None
        if match:
            return response.url[: match.start()] + f"/page={page + 1}" + response.url[match.end():]
        return re.sub(r"/customerreviews/", f"/customerreviews/page={page + 1}/", response.url, count=1, flags=re.I)

    def _review_page(self, url: str) -> str:
        match = _FEED_PATH.search(url)
        if not match:
            return url
        return f"https://apps.apple.com/{match['country'].lower()}/app/id{match['app']}?see-all=reviews"

    def _json_entry(self, entry: dict[str, Any], app_page: str) -> ReviewItem | None:
        def label(key: str) -> Any:
            value = entry.get(key)
            return value.get("label") if isinstance(value, dict) else None

        if label("im:rating") is None and "im:name" in entry:
            return None  # older feeds open with an entry describing the app itself
        return ReviewItem(
            external_id=str(label("id")).strip(),
            url=app_page,
            body=clean_text(label("content")),
            title=clean_line(label("title")),
            rating=self.checked_rating(label("im:rating")),
            author=clean_line((entry.get("author") or {}).get("name", {}).get("label")),
            app_version=clean_line(label("im:version")),
            snippet_hash=snippet_hash(json.dumps(entry, sort_keys=True, ensure_ascii=False)),
        )

    def _xml_entry(self, entry: Selector, app_page: str) -> ReviewItem | None:
        rating = entry.xpath("im:rating/text()").get()
        if rating is None and entry.xpath("im:name"):
            return None  # the app itself
        review_id = (entry.xpath("a:id/text()").get() or "").strip()
        if not review_id:
            self.problem("app_store/missing_id")
            return None
        text = entry.xpath("a:content[@type='text']/text()").get()
        if text is None:
            text = entry.xpath("a:content[1]/text()").get()
        updated = entry.xpath("a:updated/text()").get()
        published = parse_datetime(updated) if updated else None
        if published is None:
            self.problem("app_store/bad_date")
        return ReviewItem(
            external_id=review_id,
            url=app_page,
            body=clean_text(text),
            title=clean_line(entry.xpath("a:title/text()").get()),
            rating=self.checked_rating(rating),
            author=clean_line(entry.xpath("a:author/a:name/text()").get()),
            published_at=published,
            app_version=clean_line(entry.xpath("im:version/text()").get()),
            snippet_hash=snippet_hash(entry.get()),
        )


def _last_page(response: Response) -> int:
    """The page number of the feed's rel="last" link (XML or JSON), else Apple's limit."""
    match = re.search(rb'rel="last"[^>]*href="[^"]*?/page=(\d+)', response.body) or re.search(
        rb'"rel":\s*"last",\s*"href":\s*"[^"]*?/page=(\d+)', response.body)
    return int(match.group(1)) if match else LAST_PAGE
