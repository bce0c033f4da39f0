"""Google Play: an app's reviews, from the app page's embedded data and the batch endpoint the page itself uses."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import scrapy
from scrapy.http import Response

from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text
from spiders.sites._api import ApiSpider, epoch

# AF_initDataCallback({key: 'ds:14', ..., data:function(){return [...]}}) (2018) or data:[...] (later builds)
_DATA_BLOCK = re.compile(r"AF_initDataCallback\(\s*\{\s*key:\s*'(ds:\d+)'.*?data:\s*(?:function\(\)\{\s*return\s+)?", re.S)
BATCH_PATH = "/_/PlayStoreUi/data/batchexecute"
REVIEWS_RPC = "UsvDTd"
NEWEST = 2  # the page's own sort codes: 1 most relevant, 2 newest, 3 rating
PAGE_SIZE = 40


def _is_review(node: Any) -> bool:
    """[id, [name, ...], stars 1-5, title?, text, [epoch s, ns], ...]: the shape of one review, whatever the key."""
    return (
        isinstance(node, list) and len(node) > 5 and isinstance(node[0], str) and isinstance(node[1], list)
        and bool(node[1]) and isinstance(node[1][0], str) and isinstance(node[2], int) and 1 <= node[2] <= 5
        and (node[4] is None or isinstance(node[4], str))
        and isinstance(node[5], list) and bool(node[5]) and isinstance(node[5][0], int)
    )


def review_blocks(text: str) -> Iterator[tuple[list[Any], str | None]]:
    """(reviews, next-page token) for each block of reviews in an app page's embedded data."""
    decoder = json.JSONDecoder(strict=False)
    for match in _DATA_BLOCK.finditer(text):
        try:
            data, _ = decoder.raw_decode(text, match.end())
        except (ValueError, RecursionError):
            continue
        found = _reviews_in(data)
        if found is not None:
            yield found


def _reviews_in(data: Any) -> tuple[list[Any], str | None] | None:
    """A list whose first element is a list of reviews; its token is the first string after that list."""
    if not isinstance(data, list) or not data:
        return None
    head = data[0]
    if isinstance(head, list) and head and all(_is_review(node) for node in head):
        return head, _first_string(data[1:])
    return None


def _first_string(node: Any) -> str | None:
    if isinstance(node, str) and node:
        return node
    if isinstance(node, list):
        for part in node:
            found = _first_string(part)
            if found:
                return found
    return None


def batch_answers(body: str) -> Iterator[Any]:
    """The decoded payloads of a batchexecute answer: `)]}'` then envelopes (chunked with lengths, or one array)."""
    text = body.lstrip()
    if text.startswith(")]}'"):
        text = text[4:]
    decoder = json.JSONDecoder(strict=False)
    position = 0
    while position < len(text):
        while position < len(text) and (text[position].isspace() or text[position].isdigit()):
            position += 1  # the chunk lengths of `rt=c` answers
        if position >= len(text):
            break
        try:
            envelopes, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return
        for envelope in envelopes if isinstance(envelopes, list) else []:
            if isinstance(envelope, list) and len(envelope) > 2 and envelope[:2] == ["wrb.fr", REVIEWS_RPC]:
                try:
                    yield json.loads(envelope[2]) if isinstance(envelope[2], str) else None
                except (ValueError, RecursionError):
                    continue


class GooglePlaySpider(ApiSpider):
    """Google Play reviews of one app: url https://play.google.com/store/apps/details?id=<package>&hl=en&gl=US.

    The app page's embedded data (AF_initDataCallback blocks; the block with reviews is found by its shape, not
    its key) gives its reviews; then the batch endpoint the page itself calls
    (POST /_/PlayStoreUi/data/batchexecute, rpc UsvDTd) gives them newest first, page after page through the
    answer's page token. Each review: stars, title (older layouts), text, author, time, the app version it was
    written on, thumbs up as votes, and the developer's reply with its time.
    """

    name = "google_play"
    site_name = "Google Play"
    hosts = ("play.google.com",)
    verified_on = "a real app page (May 2018 layout, 40 reviews in ds:14)"
    obeys_robots_txt = True  # the app page is a web page

    def first_requests(self) -> Iterator[scrapy.Request]:
        # The app page's embedded reviews are in the page's own order (most relevant), not newest first.
        yield self.api_request(self.url, 1, meta={"unordered": True})

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return b"AF_initDataCallback" in response.body and any(True for _ in review_blocks(response.text))

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        for reviews, _ in self._blocks(response):
            yield from self.read_each(reviews, self._review)

    def next_page(self, response: Response) -> str | None:
        if BATCH_PATH not in response.url:
            token = None  # from the app page: the newest come first from the batch endpoint
        else:
            tokens = [token for _, token in self._blocks(response) if token]
            if not tokens or tokens[0] in self.tokens_seen:
                return None
            token = tokens[0]
            self.tokens_seen.add(token)
        self.next_token = token
        query = {"rpcids": REVIEWS_RPC, "hl": self._app_query("hl", "en"), "gl": self._app_query("gl", "US"),
                 "_reqid": 1000 + len(self.tokens_seen), "rt": "c"}
        return self._origin() + BATCH_PATH + "?" + urlencode(query)

    def follow_page(self, response: Response, next_url: str, page: int) -> scrapy.Request:
        app = self._app_query("id", "")
        token = json.dumps(self.next_token)
        inner = f'[null,null,[2,{NEWEST},[{PAGE_SIZE},null,{token}],null,[]],["{app}",7]]'
        body = urlencode({"f.req": json.dumps([[[REVIEWS_RPC, inner, None, "generic"]]], separators=(",", ":"))})
        return self.api_request(
            next_url, page, method="POST", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
        )

    @property
    def tokens_seen(self) -> set[str]:
        return self.__dict__.setdefault("_tokens_seen", set())

    next_token: str | None = None

    def _blocks(self, response: Response) -> list[tuple[list[Any], str | None]]:
        text = response.text if hasattr(response, "text") else response.body.decode("utf-8", "replace")
        if BATCH_PATH in response.url or text.lstrip().startswith(")]}'"):
            return [found for answer in batch_answers(text) if (found := _reviews_in(answer))]
        return list(review_blocks(text))

    def _origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def _app_query(self, key: str, default: str) -> str:
        return (parse_qs(urlsplit(self.url).query).get(key) or [default])[0]

    def _review(self, node: list[Any]) -> ReviewItem | None:
        author = node[1][0]
        reply = node[7] if len(node) > 7 and isinstance(node[7], list) else None
        version = node[10] if len(node) > 10 and isinstance(node[10], str) else None
        votes = node[6] if isinstance(node[6], int) else None
        app = self._app_query("id", "")
        return ReviewItem(
            external_id=node[0],
            url=(f"https://play.google.com/store/apps/details?id={app}&reviewId={node[0]}" if app else self.url),
            body=clean_text(node[4]),
            title=clean_line(node[3]) if isinstance(node[3], str) else None,
            rating=self.checked_rating(node[2]),
            author=clean_line(author),
            published_at=epoch(node[5][0]),
            reply=self._reply(reply),
            app_version=clean_line(version),
            votes=votes,
            snippet_hash=snippet_hash(json.dumps(node, ensure_ascii=False)),
        )

    def _reply(self, reply: list[Any] | None) -> Reply | None:
        """[developer, text, [epoch s, ns]] (the developer's name may be null)."""
        if not reply or len(reply) < 2 or not isinstance(reply[1], str) or not reply[1].strip():
            return None
        when = reply[2] if len(reply) > 2 and isinstance(reply[2], list) and reply[2] else None
        return Reply(body=clean_text(reply[1]), published_at=epoch(when[0]) if when else None)
