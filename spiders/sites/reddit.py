"""Reddit: posts and comments that mention the business (a search, a subreddit's new posts, a thread's comments)."""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote, urlencode

import scrapy
from pydantic import Field, model_validator
from scrapy.http import Response
from w3lib.url import add_or_replace_parameter

from spiders.items import ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text
from spiders.sites._api import ApiSpider, EnvNameOptions, credential, epoch, json_answer

SITE = "https://www.reddit.com"
_THREAD = re.compile(r"^(?:https?://[^/]+)?(?:/r/\w+)?/comments/(\w+)|^(\w+)$")


def _version() -> str:
    try:
        return version("repwatch")
    except PackageNotFoundError:
        return "0"


class RedditOptions(EnvNameOptions):
    query: str | None = Field(None, min_length=1, description="search words (in `subreddit` only, when given)")
    subreddit: str | None = Field(None, pattern=r"^(r/)?\w+$", description="a subreddit (its new posts, or where to search)")
    thread: str | None = Field(None, description="a thread's permalink or id: its comments")
    username: str = Field(pattern=r"^(/?u/)?[\w-]+$",
                          description="your Reddit user name: Reddit's API rules want it in the User-Agent")
    client_id_env: str | None = Field(None, description="environment variable with an OAuth app's client id")
    client_secret_env: str | None = Field(None, description="environment variable with its client secret")
    token_url: str = Field(SITE + "/api/v1/access_token", description="where OAuth tokens are asked for")
    oauth_url: str = Field("https://oauth.reddit.com", description="the API host used with a token")

    @model_validator(mode="after")
    def _what_to_read(self) -> RedditOptions:
        if self.thread is not None and not _THREAD.match(self.thread):
            raise ValueError(f"thread: {self.thread!r} is not a Reddit thread's permalink or id")
        if sum(bool(x) for x in (self.query, self.thread)) + (self.subreddit is not None and not self.query) != 1:
            raise ValueError("give one of: query (with or without subreddit), subreddit, thread")
        if (self.client_id_env is None) != (self.client_secret_env is None):
            raise ValueError("give both client_id_env and client_secret_env, or neither")
        return self


class RedditSpider(ApiSpider):
    """Reddit posts and comments from its JSON API (url: https://www.reddit.com): a search (`options.query`, in
    `options.subreddit` when given; /search.json?sort=new), a subreddit's new posts (`options.subreddit` alone;
    /r/<sub>/new.json) or a thread's comments (`options.thread`: /comments/<id>.json). Listings page through
    `after`; a thread's "load more" stubs are counted, not fetched.

    Each post or comment: its text (a post's title and text), author, time, score as votes, and its permalink.
    No stars: the text is scored, its language detected. Reddit's rules are kept: a User-Agent naming the app
    and `options.username`; about 10 requests a minute without credentials, paced by the X-Ratelimit-* headers
    Reddit sends. An OAuth app's credentials (`client_id_env`, `client_secret_env`: names of environment
    variables, client-credentials grant) raise the limit to about 100 a minute, on oauth.reddit.com.
    """

    name = "reddit"
    site_name = "Reddit"
    may_be_empty = True  # a search for mentions: none today is a quiet day
    hosts = ("reddit.com", "www.reddit.com", "oauth.reddit.com", "old.reddit.com")
    Options = RedditOptions
    options: RedditOptions
    verified_on = "a real thread's .json (2016, 199 comments)"
    min_interval = 6.0  # 10 requests a minute, Reddit's limit for clients without OAuth
    token: str | None = None

    def api_headers(self) -> dict[str, str]:
        user = self.options.username.removeprefix("/").removeprefix("u/")
        headers = {"User-Agent": f"python:repwatch:{_version()} (by /u/{user})"}
        if self.token:
            headers["Authorization"] = f"bearer {self.token}"
        return headers

    def auth_hint(self) -> str:
        if self.options.client_id_env:
            return f"check the OAuth app's credentials in {self.options.client_id_env} and {self.options.client_secret_env}"
        return "Reddit refused the request (a private or banned subreddit?)"

    def start_url(self) -> str:
        base = self.options.oauth_url if self.token else self.url
        base = base.rstrip("/")
        options = self.options
        subreddit = options.subreddit.removeprefix("r/") if options.subreddit else None
        if options.thread:
            match = _THREAD.match(options.thread)
            assert match is not None  # checked by the options
            return f"{base}/comments/{match.group(1) or match.group(2)}.json?" + urlencode(
                {"sort": "new", "limit": 500, "raw_json": 1})
        if options.query:
            where = f"/r/{quote(subreddit)}/search.json" if subreddit else "/search.json"
            parameters: dict[str, Any] = {"q": options.query, "sort": "new", "limit": 100, "raw_json": 1}
            if subreddit:
                parameters["restrict_sr"] = 1
            return base + where + "?" + urlencode(parameters)
        return f"{base}/r/{quote(subreddit or '')}/new.json?" + urlencode({"limit": 100, "raw_json": 1})

    def first_requests(self) -> Iterator[scrapy.Request]:
        if self.options.client_id_env is None or self.options.client_secret_env is None:
            yield self.api_request(self.start_url(), 1)
            return
        client_id = credential(self.options.client_id_env, "client_id_env")
        secret = credential(self.options.client_secret_env, "client_secret_env")
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        request = self.api_request(
            self.options.token_url, 1, method="POST", body="grant_type=client_credentials",
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        yield request.replace(callback=self._token_received)

    def _token_received(self, response: Response) -> Iterator[Any]:
        data = json_answer(response) if response.status == 200 else None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            if response.status in (429, 503):
                yield from self.parse(response)  # waited out, then asked again (this callback again)
                return
            status = f"HTTP {response.status}" if response.status != 200 else "no access_token in the answer"
            self.fail(f"authentication failed ({status}): {self.auth_hint()}", response.url)
            return
        self.token = str(token)
        self.min_interval = 0.6  # 100 requests a minute with OAuth
        yield self.api_request(self.start_url(), 1)

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        data = json_answer(response)
        if isinstance(data, list):  # a thread: [the post's listing, the comments' listing]
            listings = [part for part in data if isinstance(part, dict)]
            yield from self.read_each([thing for listing in listings for thing in _things(listing)], self._thing)
        elif isinstance(data, dict):
            yield from self.read_each(_things(data), self._thing)

    def next_page(self, response: Response) -> str | None:
        data = json_answer(response)
        if not isinstance(data, dict):
            return None  # a thread has no pages
        after = (data.get("data") or {}).get("after")
        return add_or_replace_parameter(response.url, "after", after) if isinstance(after, str) and after else None

    def _thing(self, thing: dict[str, Any]) -> ReviewItem | None:
        kind, data = thing["kind"], thing["data"]
        if kind == "more":
            self.problem("reddit/more_comments_not_fetched", len(data.get("children") or []))
            return None
        if kind not in ("t1", "t3"):
            return None
        title = clean_line(data.get("title")) if kind == "t3" else None
        body = clean_text(data.get("selftext") if kind == "t3" else data.get("body"))
        if body in ("[deleted]", "[removed]"):
            body = ""
        if not body and not title:
            self.problem("reddit/empty_post")
            return None
        author = data.get("author")
        score = data.get("score")
        return ReviewItem(
            external_id=str(data["name"]),
            url=SITE + str(data["permalink"]) if data.get("permalink") else self._comment_url(data),
            body=body or title or "",
            title=title,
            author=None if author in (None, "[deleted]") else clean_line(author),
            published_at=epoch(data.get("created_utc")),
            votes=score if isinstance(score, int) else None,
            snippet_hash=snippet_hash(json.dumps({k: v for k, v in data.items() if k != "replies"}, sort_keys=True)),
        )

    def _comment_url(self, data: dict[str, Any]) -> str:
        """A comment's permalink when the answer leaves it out (older answers): its thread's URL and its id."""
        thread = str(data.get("link_id") or "").removeprefix("t3_")
        return f"{SITE}/r/{data.get('subreddit')}/comments/{thread}/_/{data['id']}/"


def _things(listing: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every thing of a Listing, the replies nested under each comment included, depth first."""
    children = (listing.get("data") or {}).get("children") or []
    for thing in children:
        if not isinstance(thing, dict):
            continue
        yield thing
        replies = (thing.get("data") or {}).get("replies")
        if isinstance(replies, dict):
            yield from _things(replies)
