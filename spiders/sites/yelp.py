"""Yelp: reviews from the GraphQL review feed (JSON) and from server-rendered review blocks (HTML)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from parsel import Selector
from scrapy.http import HtmlResponse, Response
from w3lib.url import add_or_replace_parameter

from spiders.base import ReviewSpider, json_document, with_query
from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import (
    clean_line,
    clean_text,
    html_to_text,
    parse_datetime,
)

YELP = "https://www.yelp.com"
_STARS = re.compile(r"(\d(?:\.\d+)?) star")
_US_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
# Elements of an archived earlier version of a review, which Yelp shows inside the current one.
_NOT_PREVIOUS = "[not(ancestor::*[contains(concat(' ', normalize-space(@class), ' '), ' previous-review ')])]"
_REVIEW_CLASS = "contains(concat(' ', normalize-space(@class), ' '), ' review ')"
# Review blocks: not one inside another review (an archived previous version may be marked up as a review too).
REVIEW_BLOCKS = (
    f"//div[@data-review-id][{_REVIEW_CLASS}][not(ancestor::div[@data-review-id][{_REVIEW_CLASS}])]"
    "[not(contains(concat(' ', normalize-space(@class), ' '), ' previous-review '))]"
)


class YelpSpider(ReviewSpider):
    """Yelp reviews of a business page (https://www.yelp.com/biz/<alias>), when Yelp serves it rendered on the
    server; `repwatch extract` also reads a saved answer of the GraphQL review feed (POST /gql/batch,
    GetBusinessReviewFeed), which is what current, script-rendered business pages load.

    From HTML: each review block with stars, date (an updated review carries its update date), text and the
    business owner's comment as the reply, the stars and date read from schema.org microdata
    (meta[itemprop=ratingValue], datePublished) where the page has them; archived previous versions are skipped. From the feed: id, text,
    language, stars, author and time, but no owner replies (no saved answer shows where they are), and only the
    first answer: the feed's next page is a POST with a cursor.
    """

    name = "yelp"
    site_name = "Yelp"
    hosts = ("yelp.com", "www.yelp.com", "m.yelp.com") + tuple(
        f"{prefix}yelp.{tld}" for tld in ("ca", "co.uk", "com.au", "ie", "de", "fr", "es", "it", "nl") for prefix in ("", "www.")
    )

    @classmethod
    def normalize_url(cls, url: str) -> str:
        """Newest first: Yelp's default order is "Yelp Sort", which puts new reviews anywhere."""
        return with_query(url, {"sort_by": "date_desc"})

    @classmethod
    def sniff(cls, response: Response) -> bool:
        if _feed_nodes(response) is not None:
            return True
        return isinstance(response, HtmlResponse) and bool(
            response.css("div.review[data-review-id] div.i-stars, div.review[data-review-id] meta[itemprop=ratingValue]")
        )

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        nodes = _feed_nodes(response)
        if nodes is not None:
            yield from self.read_each(nodes, lambda node: self._review_from_node(response, node))
        elif isinstance(response, HtmlResponse):
            page_author = clean_line(" ".join(response.css(".user-profile_info h1 ::text").getall()))
            blocks = response.xpath(REVIEW_BLOCKS)
            yield from self.read_each(blocks, lambda block: self._review_from_block(response, block, page_author))

    def next_page(self, response: Response) -> str | None:
        if not isinstance(response, HtmlResponse) or not response.css("div.review[data-review-id]"):
            return None  # the feed pages by POST; a page without reviews (a search page) is not followed
        href = response.css("link[rel=next]::attr(href), a.next::attr(href), a[rel=next]::attr(href)").get()
        url = response.urljoin(href.strip()) if href and href.strip() else None
        return None if url == response.url else url

    # --- GraphQL feed -----------------------------------------------------------------------------------------------

    def _review_from_node(self, response: Response, node: dict[str, Any]) -> ReviewItem | None:
        review_id = str(node.get("encid") or node.get("id") or "").strip()
        if not review_id:
            self.problem("yelp/missing_id")
            return None
        text = node.get("text") or {}
        created = node.get("createdAt")
        if isinstance(created, dict):
            created = created.get("utcDateTime")
        alias = (node.get("business") or {}).get("alias")
        return ReviewItem(
            external_id=review_id,
            url=_review_url(f"{YELP}/biz/{alias}" if alias else response.url, review_id),
            body=clean_text(text.get("full") if isinstance(text, dict) else text),
            rating=self._rating(node.get("rating")),
            author=clean_line((node.get("author") or {}).get("displayName")),
            published_at=self._iso_date(created),
            language=clean_line(text.get("language")) if isinstance(text, dict) else None,
            snippet_hash=snippet_hash(json.dumps(node, sort_keys=True, ensure_ascii=False)),
        )

    # --- server-rendered review blocks ------------------------------------------------------------------------------

    def _review_from_block(self, response: Response, block: Selector, page_author: str | None) -> ReviewItem | None:
        review_id = (block.attrib.get("data-review-id") or "").strip()
        if not review_id:
            self.problem("yelp/missing_id")
            return None
        # `div.i-stars` (2016-2021 pages) or `i.star-img` (earlier ones), titled "4.0 star rating".
        stars = block.xpath(
            f".//*[contains(@class, 'i-stars') or contains(@class, 'star-img')]{_NOT_PREVIOUS}/@title"
        ).get()
        match = _STARS.search(stars or "")
        # Pages with schema.org microdata: the stars and the date in meta[itemprop] (the current version's only).
        rating_value = block.xpath(f".//meta[@itemprop='ratingValue']{_NOT_PREVIOUS}/@content").get()
        qualifier = block.xpath(f".//span[contains(@class, 'rating-qualifier')]{_NOT_PREVIOUS}").get()
        published = block.xpath(f".//meta[@itemprop='datePublished']{_NOT_PREVIOUS}/@content").get()
        text = block.xpath(f".//div[contains(concat(' ', normalize-space(@class), ' '), ' review-content ')]"
                           f"{_NOT_PREVIOUS}/p | .//*[@itemprop='description' or @itemprop='reviewBody']{_NOT_PREVIOUS}")
        business_link = block.css("a.biz-name::attr(href)").get()
        author = (
            clean_line(" ".join(block.css(".user-display-name ::text").getall()))
            or clean_line(block.xpath(f".//meta[@itemprop='author']{_NOT_PREVIOUS}/@content").get())
            or clean_line(" ".join(block.xpath(f".//*[@itemprop='author']{_NOT_PREVIOUS}//*[@itemprop='name']//text()")
                                   .getall()))
        )
        return ReviewItem(
            external_id=review_id,
            url=_review_url(response.urljoin(business_link) if business_link else response.url, review_id),
            body=html_to_text(text.get("")),
            rating=self._rating(match.group(1) if match else rating_value),
            author=author or page_author,
            published_at=self._block_date(html_to_text(qualifier) if qualifier else None, published),
            language=clean_line(text[0].attrib.get("lang")) if text else None,
            reply=self._owner_reply(block),
            snippet_hash=snippet_hash(block.get()),
        )

    def _owner_reply(self, block: Selector) -> Reply | None:
        replies = block.css("div.biz-owner-reply")
        if not replies:
            return None
        reply = replies[0]
        # A long comment comes twice: cut with "…", and whole in a hidden toggle.
        comment = (
            reply.css(".js-expandable-comment span.js-content-toggleable.hidden").get()
            or reply.css(".js-expandable-comment span.js-content-toggleable").get()
            or reply.css(".js-expandable-comment").get()
        )
        body = html_to_text(comment) if comment else ""
        if not body:
            self.problem("yelp/empty_reply")
            return None
        return Reply(body=body, published_at=self._us_date(" ".join(reply.css("span.bullet-after ::text").getall())))

    # --- field helpers: bad values are counted, never raised -----------------------------------------------------

    def _rating(self, value: Any) -> float | None:
        return self.checked_rating(value)

    def _iso_date(self, value: Any) -> datetime | None:
        parsed = parse_datetime(value) if value else None
        if parsed is None:
            self.problem("yelp/bad_date")
        return parsed

    def _block_date(self, qualifier: str | None, published: str | None) -> datetime | None:
        """The qualifier's M/D/YYYY (an updated review's update date), else the microdata's datePublished."""
        if published and not _US_DATE.search(qualifier or ""):
            parsed = parse_datetime(published.strip())
            if parsed is not None:
                return parsed
        return self._us_date(qualifier)

    def _us_date(self, text: str | None) -> datetime | None:
        """"3/16/2015 Updated review" → 2015-03-16 (UTC midnight: Yelp prints the reviewer's local day)."""
        match = _US_DATE.search(text or "")
        if match:
            month, day, year = (int(part) for part in match.groups())
            try:
                return datetime(year, month, day, tzinfo=timezone.utc)
            except ValueError:  # "2/30/2015"
                pass
        self.problem("yelp/bad_date")
        return None


def _feed_nodes(response: Response) -> list[Any] | None:
    """Review nodes of a GraphQL batch answer (`[{"data": {"business": {"reviews": {"edges": [{"node"}]}}}}]`),
    or of a saved list of such nodes; None for anything else."""
    data = json_document(response)
    if data is None:
        return None
    batches = data if isinstance(data, list) else [data]
    if batches and all(isinstance(node, dict) and "encid" in node and "rating" in node for node in batches):
        return batches
    nodes: list[Any] = []
    found = False
    for batch in batches:
        try:
            edges = batch["data"]["business"]["reviews"]["edges"]
        except (KeyError, TypeError):
            continue
        if isinstance(edges, list):
            found = True
            nodes.extend(edge.get("node") if isinstance(edge, dict) else None for edge in edges)
    return nodes if found else None


def _review_url(business_url: str, review_id: str) -> str:
    """Yelp's permalink for a review: the business page with `hrid=<review id>`."""
    return add_or_replace_parameter(business_url.split("#", 1)[0], "hrid", review_id)
