"""Generic spider for RSS and Atom feeds (Google Alerts, Reddit search, app-store review feeds), via feedparser."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import feedparser
from scrapy.http import Response

from spiders.base import REVIEW_ERRORS, ReviewSpider
from spiders.generic.schema_org import content_id
from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime

# The first element of an RSS 0.9x/2.0, RSS 1.0 (RDF) or Atom document, after the XML declaration, comments,
# a doctype and processing instructions (a stylesheet link). The prolog's parts are matched atomically and never
# given back: a lazy comment could otherwise also end at a later "-->", and a page opening with many empty comments
# that is not a feed backtracked through every way to group them (exponential: "<!---->" * 30 never finished).
_FEED_ROOT = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(?>\s|<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*+<(?:[\w.-]+:)?(rss|feed|RDF)[\s>/]", re.DOTALL
)


class FeedSpider(ReviewSpider):
    """Any RSS or Atom feed, one review per entry: a Google Alerts feed (https://www.google.com/alerts/feeds/...),
    a Reddit search (https://www.reddit.com/search.rss?q=<name>&sort=new), an App Store review feed
    (https://itunes.apple.com/<country>/rss/customerreviews/id=<app id>/sortBy=mostRecent/xml).

    Each entry gives its id (else its link), title, text (the content, else the summary), date, author and link;
    Google Alerts links lead to the article itself, not through Google. There are stars only where the feed has
    them (App Store feeds: im:rating); the App Store feed's entry describing the app itself is skipped. Pages
    follow the feed's Atom link rel="next" when it has one.
    """

    name = "feed"
    site_name = "RSS / Atom feed"
    many_sites = True  # a Google Alerts or Reddit feed: each entry links to the site where it was written

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return _is_feed(response.body)

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        parsed = _parse(response)
        if parsed is None:
            return
        entries = parsed.entries
        rated_feed = any(_rating_value(entry) is not None for entry in entries)
        language = _language(parsed.feed.get("language"))
        seen: set[str] = set()
        for entry in entries:
            if rated_feed and _rating_value(entry) is None and (entry.get("im_name") or entry.get("im_artist")):
                continue  # an App Store feed's first entry is the app, not a review of it
            try:
                review = self._review(response, entry, language, rated=rated_feed)
            except REVIEW_ERRORS:
                self.problem("feed/unreadable_entry")
                continue
            if not review.body and not review.title:
                self.problem("feed/empty_entry")
                continue
            if review.external_id not in seen:
                seen.add(review.external_id)
                yield review

    def next_page(self, response: Response) -> str | None:
        parsed = _parse(response)
        if parsed is None:
            return None
        for link in parsed.feed.get("links") or []:
            if link.get("rel") == "next" and (link.get("href") or "").strip():
                url = response.urljoin(link["href"].strip())
                return None if url == response.url else url
        return None

    def _review(self, response: Response, entry: Any, feed_language: str | None, rated: bool) -> ReviewItem:
        title = clean_line(entry.get("title"))
        body = clean_text(_body(entry))
        author = clean_line(entry.get("author"))
        published = self._date(entry)
        link = _entry_url(entry)
        url = response.urljoin(link) if link else response.url
        entry_id = (entry.get("id") or "").strip() if isinstance(entry.get("id"), str) else ""
        external_id = entry_id or (url if url != response.url else "")
        if not external_id:
            # Neither a guid nor a link: the entry's own content names it.
            external_id = content_id(author, published.date().isoformat() if published else "", f"{title or ''}\n{body}")
        return ReviewItem(
            external_id=external_id,
            url=url,
            body=body,
            rating=self._rating(entry) if rated else None,
            author=author,
            title=title,
            published_at=published,
            language=_language(_detail_language(entry)) or feed_language,
            snippet_hash=snippet_hash(repr(sorted((k, str(v)) for k, v in entry.items()))),
        )

    def _date(self, entry: Any) -> datetime | None:
        for key in ("published", "updated", "created"):
            moment = entry.get(f"{key}_parsed")  # feedparser gives these in UTC, as time.struct_time
            if moment is not None:
                year, month, day, hour, minute, second = moment[:6]
                return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
            raw = entry.get(key)
            if raw:
                parsed = parse_datetime(raw)
                if parsed is None:
                    self.problem("feed/bad_date")
                return parsed
        return None

    def _rating(self, entry: Any) -> float | None:
        value = _rating_value(entry)
        try:
            rating = float(value)
        except (TypeError, ValueError):
            self.problem("feed/missing_rating" if value is None else "feed/bad_rating")
            return None
        if not 1 <= rating <= 5:
            self.problem("feed/bad_rating")
            return None
        return rating


def _is_feed(body: bytes) -> bool:
    return bool(_FEED_ROOT.match(body[:8192]))


def _parse(response: Response) -> Any:
    """feedparser's result for a feed body, or None when the body is not a feed (an HTML page, JSON)."""
    if not _is_feed(response.body):
        return None
    content_type = response.headers.get("Content-Type") or b""
    # A stream, never the bytes: feedparser would treat a str that looks like a URL or a path as one to open.
    # No content-location: feedparser would resolve Atom ids against it ("123" → a URL); links are joined here.
    try:
        return feedparser.parse(
            io.BytesIO(response.body), response_headers={"content-type": content_type.decode("latin-1")},
            sanitize_html=True,
        )
    except (ValueError, LookupError):
        # feedparser's encoding sniffing raises on some damaged bytes (a bad BOM, NULs in an encoding name):
        # a feed we cannot read is no feed, like any other unreadable page.
        return None


def _body(entry: Any) -> str:
    """The fullest text an entry carries: its content (HTML preferred over plain), else its summary."""
    contents = [c for c in entry.get("content") or [] if isinstance(c.get("value"), str) and c["value"].strip()]
    if contents:
        html = [c for c in contents if "html" in (c.get("type") or "")]
        # feedparser is untyped; the filter above kept only str values.
        return cast(str, (html or contents)[0]["value"])
    summary = entry.get("summary")
    return summary if isinstance(summary, str) else ""


def _entry_url(entry: Any) -> str | None:
    """The entry's page: its alternate link (else a related one), with a Google redirect unwrapped."""
    links = [link for link in entry.get("links") or [] if (link.get("href") or "").strip()]
    for rel in ("alternate", "related"):
        for link in links:
            if link.get("rel", "alternate") == rel:
                return _unwrap_google_redirect(link["href"].strip())
    return None


def _unwrap_google_redirect(url: str) -> str:
    """https://www.google.com/url?...&url=<article>&... (how Google Alerts links) → the article's URL."""
    parts = urlsplit(url)
    if parts.path == "/url" and (parts.hostname or "").endswith("google.com"):
        target = (parse_qs(parts.query).get("url") or parse_qs(parts.query).get("q") or [""])[0]
        if target.startswith(("http://", "https://")):
            return target
    return url


def _rating_value(entry: Any) -> Any:
    return entry.get("im_rating")


def _detail_language(entry: Any) -> str | None:
    for key in ("content", "summary_detail", "title_detail"):
        detail = entry.get(key)
        if isinstance(detail, list):
            detail = detail[0] if detail else None
        if isinstance(detail, dict) and (language := detail.get("language")):
            return language if isinstance(language, str) else None
    return None


def _language(value: Any) -> str | None:
    """"en-US" → "en": the primary tag is what language-specific scoring needs."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().split("-")[0].split("_")[0].lower() or None
