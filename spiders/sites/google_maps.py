"""Google Maps: a place's reviews from the `listugcposts` RPC the Maps web page calls itself (scraped, not an API)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import scrapy
from scrapy.http import Response

from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, clean_text
from spiders.sites._api import ApiSpider

RPC_PATH = "/maps/rpc/listugcposts"
# In the `pb` parameter (a protobuf written as !<field><type><value>): `!2m2!1i<page size>!2s<page token>` asks
# for a page (an empty token: the first), and `!13m1!1e<n>` is the order: 1 most relevant, 2 newest, 3 highest,
# 4 lowest rating. From public write-ups of this RPC, not from Google.
_PAGE_TOKEN = re.compile(r"(!2m2!1i\d+!2s)([^!]*)")
_SORT = re.compile(r"!13m1!1e\d+")
NEWEST = "!13m1!1e2"
_FEATURE_ID = re.compile(r"!1s(0x[0-9a-f]+):(0x[0-9a-f]+)", re.I)
_REVIEW_LINK = "https://www.google.com/maps/reviews/"
_PB_SAFE = "!:*'()~._-"  # what the browser leaves as it is in `pb`; a token's + / = are escaped


def answer_data(response: Response) -> Any:
    """The RPC's JSON: the `)]}'` guard line dropped; None when the body is not such an answer."""
    text = response.body.decode("utf-8", "replace").lstrip()
    if text.startswith(")]}'"):
        text = text[4:]
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _at(node: Any, *path: int) -> Any:
    """node[a][b]...: None where a list is shorter, a field is null or not a list (the answer drops empty tails)."""
    for index in path:
        if not isinstance(node, list) or index >= len(node):
            return None
        node = node[index]
    return node


def _review_nodes(data: Any) -> list[list[Any]]:
    """d[2][i][0], each a review: [id, [place, ?, created µs, edited µs, [.. author ..]], [stars .. text], reply..]."""
    entries = _at(data, 2)
    if not isinstance(entries, list):
        return []
    return [entry[0] for entry in entries if isinstance(_at(entry, 0), list) and isinstance(_at(entry, 0, 0), str)]


def next_token(data: Any) -> str | None:
    """d[1]: the token of the next (older) page; null or "" on the last."""
    token = _at(data, 1)
    return token if isinstance(token, str) and token.strip() else None


def _microseconds(value: Any) -> datetime | None:
    """Microseconds since 1970 → UTC, to the second (what the page shows is coarser still)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value // 1_000_000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _with_pb(url: str, change: Any) -> str:
    """`url` with its `pb` parameter changed by change(pb); the other parameters as they were."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(
        f"{quote(key, safe='')}={quote(change(value) if key == 'pb' else value, safe=_PB_SAFE if key == 'pb' else '')}"
        for key, value in pairs
    )
    return urlunsplit(parts._replace(query=query))


def _pb(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)).get("pb", "")


class GoogleMapsSpider(ApiSpider):
    """Google Maps reviews of one place, from the `listugcposts` RPC the Maps page calls itself (Google's terms
    restrict automated access to Maps: the `google_business` kind is the sanctioned way to read your own reviews).
    url: the https://www.google.com/maps/rpc/listugcposts?...&pb=... address copied once from the browser's
    developer tools (Network tab, the request the place's reviews pane makes).

    Newest first (the `pb` order field `!13m1!1e2` is set where the address has one; without it the pages are
    read in their own order, never stopping early at known reviews), page after page through the answer's page
    token, written into the `pb` page field `!2m2!1i<size>!2s<token>`. Each review: id, stars, author, time (to
    the second), language, text, the owner's reply and its time, and the review's Maps link.
    """

    name = "google_maps"
    site_name = "Google Maps"
    hosts = ("www.google.com",)  # not google.com: play.google.com is google_play's
    verified_on = "a real listugcposts answer (May 2025, Indonesian, 10 reviews; no owner reply in it)"
    min_interval = 1.0  # no published limit: one page a second, like a person scrolling the reviews
    # Not a published API but the Maps page's own endpoint: Google's robots.txt decides, as for any page we crawl
    # (a source may say `obey_robots: false`, at its owner's risk).
    obeys_robots_txt = True

    @classmethod
    def normalize_url(cls, url: str) -> str:
        """Newest first, from the first page (an address copied after scrolling carries a page token)."""
        return _with_pb(url, lambda pb: _PAGE_TOKEN.sub(r"\1", _SORT.sub(NEWEST, pb), count=1))

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return bool(response.body.lstrip().startswith(b")]}'") and _review_nodes(answer_data(response)))

    def auth_hint(self) -> str:
        return "Google refused the request: copy a fresh listugcposts address from the browser"

    def first_requests(self) -> Iterator[scrapy.Request]:
        yield self.api_request(self.url, 1, meta=self._order_meta())

    def follow_page(self, response: Response, next_url: str, page: int) -> scrapy.Request:
        return self.api_request(next_url, page, meta=self._order_meta())

    def _order_meta(self) -> dict[str, Any]:
        # Only newest-first pages prove that a page of known reviews means the rest are known too.
        return {} if NEWEST in _pb(self.url) else {"unordered": True}

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        yield from self.read_each(_review_nodes(answer_data(response)), self._review)

    def next_page(self, response: Response) -> str | None:
        token = next_token(answer_data(response))
        if token is None:
            return None
        if not _PAGE_TOKEN.search(_pb(response.url)):
            self.problem("google_maps/no_page_field_in_pb")  # a token, but nowhere to put it
            return None
        return _with_pb(response.url, lambda pb: _PAGE_TOKEN.sub(lambda m: m.group(1) + token, pb, count=1))

    def _review(self, node: list[Any]) -> ReviewItem | None:
        review_id = _text(node[0])
        if review_id is None:
            return None
        author = _text(_at(node, 1, 4, 5, 0)) or _text(_at(node, 1, 4, 0, 4))  # the 2025 layout, an older one
        body = _text(_at(node, 2, 15, 0, 0))  # absent: stars only
        return ReviewItem(
            external_id=review_id.strip(),
            url=self._link(node),
            body=clean_text(body or ""),
            rating=self.checked_rating(_at(node, 2, 0, 0)),
            author=clean_line(author),
            published_at=_microseconds(_at(node, 1, 2)),
            language=clean_line(_text(_at(node, 2, 14, 0))),
            reply=self._reply(_at(node, 3)),
            snippet_hash=snippet_hash(json.dumps(node, ensure_ascii=False)),
        )

    @staticmethod
    def _reply(block: Any) -> Reply | None:
        """The owner's reply: text at [14][0][0], created µs at [1] (edited at [2]). Not in our real answer: public
        parsers of this RPC read it there; the block is present without [14] when there is no reply."""
        text = _text(_at(block, 14, 0, 0))
        if text is None:
            return None
        return Reply(body=clean_text(text), published_at=_microseconds(_at(block, 1)))

    def _link(self, node: list[Any]) -> str:
        """The review's own Maps link ([4][3][0]), else the place's (?cid= from its feature id), else the source."""
        link = _text(_at(node, 4, 3, 0))
        if link and link.startswith(_REVIEW_LINK):
            return link
        feature = _text(_at(node, 1, 0)) or ""
        found = _FEATURE_ID.fullmatch("!1s" + feature) or _FEATURE_ID.search(_pb(self.url))
        if found and int(found.group(2), 16):
            return f"https://www.google.com/maps?cid={int(found.group(2), 16)}"
        return self.url
