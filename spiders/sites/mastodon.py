"""Mastodon: posts that mention the business, from an instance's hashtag or account timeline, or its search."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import scrapy
from pydantic import Field, model_validator
from scrapy.http import Response
from w3lib.url import add_or_replace_parameter

from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text, parse_datetime
from spiders.sites._api import (
    BearerTokenOptions,
    BearerTokenSpider,
    json_answer,
)

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
PAGE_SIZE = 40


class MastodonOptions(BearerTokenOptions):
    hashtag: str | None = Field(None, pattern=r"^#?\w+$", description="a hashtag's public timeline (without #)")
    account: str | None = Field(None, pattern=r"^@?[\w.-]+(@[\w.-]+)?$", description="an account's posts: name@instance")
    query: str | None = Field(None, min_length=1, description="full-text search (many instances want a token)")
    access_token_env: str | None = Field(None, description="environment variable holding an access token")

    @model_validator(mode="after")
    def _one_timeline(self) -> MastodonOptions:
        given = [key for key in ("hashtag", "account", "query") if getattr(self, key)]
        if len(given) != 1:
            raise ValueError("give exactly one of hashtag, account, query")
        return self


class MastodonSpider(BearerTokenSpider):
    """Mastodon posts from one instance (url: https://mastodon.social, any instance): a hashtag's timeline
    (`options.hashtag`: GET /api/v1/timelines/tag/<tag>), an account's posts (`options.account`: looked up with
    /api/v1/accounts/lookup, then /api/v1/accounts/<id>/statuses), or a search (`options.query`: /api/v2/search,
    type=statuses, where the instance allows it: most want `options.access_token_env`). Newest first; pages follow
    the Link header's rel="next" (search: `offset`).

    Each post: its text (content warning first), the author's account, time, favourites as votes, and its URL.
    Boosts are read as the boosted post. No stars: the text is scored, its language detected.
    """

    name = "mastodon"
    token_wanted_by = "this instance"
    site_name = "Mastodon"
    may_be_empty = True  # a search for mentions: none today is a quiet day
    Options = MastodonOptions
    options: MastodonOptions

    def start_url(self) -> str:
        base = self.url.rstrip("/")
        options = self.options
        if options.hashtag:
            return f"{base}/api/v1/timelines/tag/{quote(options.hashtag.lstrip('#'))}?limit={PAGE_SIZE}"
        if options.account:
            return f"{base}/api/v1/accounts/lookup?" + urlencode({"acct": options.account.lstrip("@")})
        return f"{base}/api/v2/search?" + urlencode({"q": options.query, "type": "statuses", "limit": PAGE_SIZE})

    def first_requests(self) -> Iterator[scrapy.Request]:
        request = self.api_request(self.start_url(), 1)
        if self.options.account:
            request = request.replace(callback=self._account_found)
        yield request

    def _account_found(self, response: Response) -> Iterator[Any]:
        if response.status != 200:
            yield from self.parse(response)
            return
        data = json_answer(response)
        account_id = data.get("id") if isinstance(data, dict) else None
        if not account_id:
            self.fail(f"no account {self.options.account} on this instance", response.url)
            return
        yield self.api_request(
            f"{self.url.rstrip('/')}/api/v1/accounts/{quote(str(account_id))}/statuses?limit={PAGE_SIZE}", 1
        )


    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        yield from self.read_each(_statuses(json_answer(response)), self._status)

    def next_page(self, response: Response) -> str | None:
        statuses = _statuses(json_answer(response))
        if not statuses:
            return None
        if "/api/v2/search" in response.url:
            given = re.search(r"[?&]offset=(\d+)", response.url)
            offset = int(given.group(1)) if given else 0
            return add_or_replace_parameter(response.url, "offset", str(offset + len(statuses)))
        link = (response.headers.get("Link") or b"").decode("latin-1")
        match = _NEXT_LINK.search(link)
        return match.group(1) if match else None

    def _status(self, status: dict[str, Any]) -> ReviewItem | None:
        if isinstance(status.get("reblog"), dict):
            status = status["reblog"]
        account = status["account"]
        text = clean_text(status.get("content"))
        warning = clean_line(status.get("spoiler_text"))
        body = "\n\n".join(filter(None, [warning, text]))
        if not body:
            self.problem("mastodon/empty_post")
            return None
        name = clean_line(account.get("display_name"))
        acct = account["acct"]
        favourites = status.get("favourites_count")
        return ReviewItem(
            external_id=str(status.get("uri") or status["id"]),
            url=status.get("url") or status.get("uri") or self.url,
            body=body,
            author=f"{name} (@{acct})" if name else f"@{acct}",
            published_at=parse_datetime(status.get("created_at")),
            votes=favourites if isinstance(favourites, int) else None,
            snippet_hash=snippet_hash(repr(sorted((k, str(v)) for k, v in status.items()))),
        )


def _statuses(data: Any) -> list[Any]:
    """The statuses of a timeline answer (a list) or a search answer (`statuses`)."""
    if isinstance(data, dict):
        data = data.get("statuses")
    return data if isinstance(data, list) else []
