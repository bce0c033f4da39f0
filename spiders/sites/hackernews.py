"""Hacker News: stories and comments that mention the business, from the public Algolia HN search API."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from pydantic import Field
from scrapy.http import Response
from w3lib.url import add_or_replace_parameter

from spiders.base import SourceOptions
from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime
from spiders.sites._api import ApiSpider, json_answer

ITEM_URL = "https://news.ycombinator.com/item?id="


class HackernewsOptions(SourceOptions):
    query: str = Field(min_length=1, description="words to search for (the business's name)")
    tags: str = Field("(story,comment)", description="Algolia tags: (story,comment), story, comment, ask_hn ...")


class HackernewsSpider(ApiSpider):
    """Hacker News stories and comments mentioning `options.query`, newest first, from the Algolia HN search API
    (url: https://hn.algolia.com; GET /api/v1/search_by_date?query=...&tags=(story,comment)), all pages
    (`page` up to `nbPages`).

    Each hit: its text (a story's title and text, a comment's text), author, time, points as votes, and its
    permalink on news.ycombinator.com. No stars: the text is scored, its language detected.
    """

    name = "hackernews"
    site_name = "Hacker News"
    may_be_empty = True  # a search for mentions: none today is a quiet day
    hosts = ("hn.algolia.com",)
    Options = HackernewsOptions
    options: HackernewsOptions
    verified_on = None

    def start_url(self) -> str:
        query = urlencode({"query": self.options.query, "tags": self.options.tags, "hitsPerPage": 50, "page": 0})
        return self.url.rstrip("/") + "/api/v1/search_by_date?" + query

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        data = json_answer(response)
        if isinstance(data, dict) and isinstance(data.get("hits"), list):
            yield from self.read_each(data["hits"], self._hit)

    def next_page(self, response: Response) -> str | None:
        data = json_answer(response)
        if not isinstance(data, dict):
            return None
        try:
            page, pages = int(data["page"]), int(data["nbPages"])
        except (KeyError, TypeError, ValueError):
            return None
        return add_or_replace_parameter(response.url, "page", str(page + 1)) if page + 1 < pages else None

    def _hit(self, hit: dict[str, Any]) -> ReviewItem | None:
        item_id = str(hit["objectID"]).strip()
        if not item_id:
            return None
        comment = hit.get("comment_text")
        title = None if comment else clean_line(hit.get("title"))
        body = clean_text(comment or hit.get("story_text") or "")
        if not body and not title:
            self.problem("hackernews/empty_item")
            return None
        points = hit.get("points")
        return ReviewItem(
            external_id=item_id,
            url=ITEM_URL + item_id,
            body=body or title or "",
            title=title,
            author=clean_line(hit.get("author")),
            published_at=parse_datetime(hit.get("created_at")),
            votes=points if isinstance(points, int) else None,
            snippet_hash=snippet_hash(repr(sorted(hit.items()))),
        )
