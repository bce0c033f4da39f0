"""Bluesky: posts that mention the business, from app.bsky.feed.searchPosts on the public AppView."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from pydantic import Field
from scrapy.http import Response
from w3lib.url import add_or_replace_parameter

from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime
from spiders.sites._api import (
    BearerTokenOptions,
    BearerTokenSpider,
    json_answer,
)


class BlueskyOptions(BearerTokenOptions):
    query: str = Field(min_length=1, description="search words (Lucene syntax as Bluesky takes it)")
    access_token_env: str | None = Field(
        None, description="environment variable holding an access token (Bearer), for AppViews that want one"
    )


class BlueskySpider(BearerTokenSpider):
    """Bluesky posts mentioning `options.query`, newest first, from app.bsky.feed.searchPosts on the public
    AppView (url: https://public.api.bsky.app; GET /xrpc/app.bsky.feed.searchPosts?q=...&sort=latest&limit=100),
    every page through the answer's `cursor`.

    Each post: its text, the author's handle (and display name), its createdAt time, likes as votes, and its
    permalink on bsky.app. No stars: the text is scored, its language detected. The AppView's RateLimit-* headers
    pace the requests; `options.access_token_env` names a variable with a Bearer token where one is wanted.
    """

    name = "bluesky"
    token_wanted_by = "this AppView"
    site_name = "Bluesky"
    may_be_empty = True  # a search for mentions: none today is a quiet day
    hosts = ("public.api.bsky.app", "api.bsky.app")
    Options = BlueskyOptions
    options: BlueskyOptions

    def start_url(self) -> str:
        query = urlencode({"q": self.options.query, "sort": "latest", "limit": 100})
        return self.url.rstrip("/") + "/xrpc/app.bsky.feed.searchPosts?" + query


    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        data = json_answer(response)
        if isinstance(data, dict) and isinstance(data.get("posts"), list):
            yield from self.read_each(data["posts"], self._post)

    def next_page(self, response: Response) -> str | None:
        data = json_answer(response)
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if not isinstance(cursor, str) or not cursor or not data.get("posts"):
            return None
        return add_or_replace_parameter(response.url, "cursor", cursor)

    def _post(self, post: dict[str, Any]) -> ReviewItem | None:
        uri = post["uri"]
        record, author = post["record"], post["author"]
        handle = author.get("handle") or author["did"]
        body = clean_text(record.get("text"))
        if not body:
            self.problem("bluesky/empty_post")
            return None
        name = clean_line(author.get("displayName"))
        likes = post.get("likeCount")
        return ReviewItem(
            external_id=uri,
            url=f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}",
            body=body,
            author=f"{name} (@{handle})" if name else f"@{handle}",
            published_at=parse_datetime(record.get("createdAt") or post.get("indexedAt")),
            votes=likes if isinstance(likes, int) else None,
            snippet_hash=snippet_hash(repr(sorted((k, str(v)) for k, v in post.items()))),
        )
