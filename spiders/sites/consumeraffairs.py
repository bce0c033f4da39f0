"""ConsumerAffairs company pages: the schema.org microdata review blocks (`div.rvw[itemprop=reviews]`)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone

from parsel import Selector
from scrapy.http import HtmlResponse, Response

from spiders.base import ReviewSpider
from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, html_to_text

REVIEW_BLOCKS = "div.rvw[itemprop=reviews], div.rvw[data-id]"
# "Original review: Sept. 28, 2018" / "Resolution response: June 26, 2018": abbreviations carry a dot, "Sept" is 4 letters.
# Each space inside the label must be followed by a letter, so that no run of spaces can be both the label's and the
# `\s*` after it (`[A-Za-z ]+?\s*` was quadratic on a long run of spaces).
_LABELLED_DATE = re.compile(
    r"^\s*(?P<label>[A-Za-z]+(?:\s+[A-Za-z]+)*)\s*:\s*(?P<date>[A-Za-z]{3,9}\.? \d{1,2}, \d{4})\s*$"
)
_MONTH_DATE = re.compile(r"(?P<month>[A-Za-z]{3,9})\.? (?P<day>\d{1,2}), (?P<year>\d{4})")
_MONTHS = {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


class ConsumeraffairsSpider(ReviewSpider):
    """ConsumerAffairs company reviews (https://www.consumeraffairs.com/<category>/<company>.html), newest first.

    Reads every review block on the page (the company's "featured" review included) with author, stars and the
    "Original review" date. A reviewer's later "Resolution response" is part of their review and is appended to
    its text; a company response, when shown, becomes the reply. Pages follow `?page=N`.
    """

    name = "consumeraffairs"
    site_name = "ConsumerAffairs"
    verified_on = "a real saved page (2018 layout, 31 reviews)"
    hosts = ("consumeraffairs.com", "www.consumeraffairs.com")

    @classmethod
    def sniff(cls, response: Response) -> bool:
        return isinstance(response, HtmlResponse) and bool(
            response.css("div.rvw[itemprop=reviews][data-id] div.rvw-bd")
        )

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        if not isinstance(response, HtmlResponse):
            return
        yield from self.read_each(response.css(REVIEW_BLOCKS), lambda block: self._review(response, block))

    def next_page(self, response: Response) -> str | None:
        if not isinstance(response, HtmlResponse):
            return None
        href = response.css("link[rel=next]::attr(href), a.js-pager-next::attr(href), a[rel=next]::attr(href)").get()
        if not href or not href.strip():
            return None
        url = response.urljoin(href.strip())
        return None if url == response.url else url

    def _review(self, response: Response, block: Selector) -> ReviewItem | None:
        review_id = (block.attrib.get("data-id") or block.attrib.get("id", "").removeprefix("review-")).strip()
        if not review_id:
            self.problem("consumeraffairs/missing_id")
            return None
        body, published = self._body_and_date(block)
        return ReviewItem(
            external_id=review_id,
            # The anchor on the company page: the review's page number changes as new reviews arrive.
            url=f"{_company_page(response.url)}#review-{review_id}",
            body=body,
            rating=self._rating(block),
            author=clean_line(" ".join(block.css("[itemprop=author] ::text").getall())),
            published_at=published,
            reply=self._company_reply(block),
            snippet_hash=snippet_hash(block.get()),
        )

    def _body_and_date(self, block: Selector) -> tuple[str, datetime | None]:
        """The review text (with the reviewer's own follow-up last) and the "Original review" date."""
        text_parts: list[str] = []
        follow_ups: list[str] = []
        published = None
        dated = False
        for child in block.css("div.rvw-bd").xpath("./*"):
            classes = child.attrib.get("class", "")
            if "exp-btn" in classes or "rvw-bd-glry" in classes:
                continue  # the "View more" toggle and the photo gallery are not text
            if "rvw-bd__csmr-resp" in classes:
                label = clean_line(" ".join(child.css("span ::text").getall()))
                text = html_to_text("".join(child.xpath("./*[not(self::span)]").getall()))
                if text:
                    follow_ups.append(f"{label}\n{text}" if label else text)
                continue
            if child.root.tag == "span":
                labelled = _LABELLED_DATE.match(" ".join(child.css("::text").getall()))
                if labelled and labelled["label"].lower().startswith("original review"):
                    published, dated = self._date(labelled["date"]), True
                    continue
            text = html_to_text(child.get())
            if text:
                text_parts.append(text)
        if not dated:
            self.problem("consumeraffairs/missing_date")
        return "\n\n".join(text_parts + follow_ups), published

    def _company_reply(self, block: Selector) -> Reply | None:
        # Class names from the page's stylesheet (`rvw-comp-resp`, `__aut`, `__txt`); no saved page shows one.
        response_block = block.css("div.rvw-comp-resp")
        if not response_block:
            return None
        text_markup = response_block.css(".rvw-comp-resp__txt").getall()
        if not text_markup:
            text_markup = response_block.xpath("./*[not(contains(@class, 'rvw-comp-resp__aut'))]").getall()
        body = html_to_text("".join(text_markup))
        if not body:
            return None
        heading = " ".join(response_block.css(".rvw-comp-resp__aut ::text").getall())
        date = _MONTH_DATE.search(heading)
        return Reply(body=body, published_at=self._date(date.group()) if date else None)

    def _rating(self, block: Selector) -> float | None:
        value = block.css("meta[itemprop=ratingValue]::attr(content)").get() or block.css("[data-rating]::attr(data-rating)").get()
        return self.checked_rating(value)

    def _date(self, text: str) -> datetime | None:
        """"Sept. 28, 2018" → 2018-09-28 (UTC midnight: the site prints a day, not a moment)."""
        match = _MONTH_DATE.search(text)
        month = _MONTHS.get(match["month"][:3].lower()) if match else None
        if match and month:
            try:
                return datetime(int(match["year"]), month, int(match["day"]), tzinfo=timezone.utc)
            except ValueError:  # "Feb. 30"
                pass
        self.problem("consumeraffairs/bad_date")  # or no date, or an unknown month
        return None


def _company_page(url: str) -> str:
    return url.split("#", 1)[0].split("?", 1)[0]
