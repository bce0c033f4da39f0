"""Ripoff Report: report pages (one complaint each, the business's rebuttal as its reply), and the search listing."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

import scrapy
from parsel import Selector
from scrapy.http import HtmlResponse, Response

from spiders.base import ReviewSpider
from spiders.items import Reply, ReviewItem, snippet_hash
from spiders.pipelines.normalize import clean_line, html_to_text, parse_datetime

# A report's URL ends in its number: /reports/<company>/<place>/<title>-1498765
_REPORT_NUMBER_IN_URL = re.compile(r"-(\d{3,12})/?$")
_REPORT_NUMBER = re.compile(r"Report\s*:?\s*#\s*(\d{3,12})", re.I)
# "Tuesday, March 12, 2024" or "March 12, 2024 9:15 PM": the weekday is dropped, the rest read as written.
_WEEKDAY = re.compile(r"^\s*(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s*", re.I)
_LABEL = re.compile(r"^\s*(author|submitted|posted|updated)\s*:\s*", re.I)
# Who wrote a rebuttal, as Ripoff Report labels it; only the business's own counts as its reply.
_BUSINESS_ROLES = ("owner of company", "business owner", "company representative", "employee")
REPORT = "#report-view, div.report-view, article.report"
LISTING_LINKS = "#resultList .resultItem a.report_link::attr(href), .resultItem a.report_link::attr(href)"


class RipoffReportSpider(ReviewSpider):
    """Ripoff Report complaints about the business: a report page (https://www.ripoffreport.com/reports/<company>/
    <place>/<title>-<number>), or the search listing of the company's reports
    (https://www.ripoffreport.com/reports/specific_search/<company>), whose report pages are each read (again on
    each crawl, revalidated: rebuttals come later); listing pages stop at one whose reports are all known.

    A report gives its number (the id), title, author, submitted date and text; no stars, so the text is scored.
    A rebuttal by the business ("Owner of company", "Employee") is the reply; rebuttals by the report's author or
    other consumers are not. Written from the documented structure only: no real page has verified it yet.
    """

    name = "ripoff_report"
    site_name = "Ripoff Report"
    hosts = ("ripoffreport.com", "www.ripoffreport.com")
    verified_on: ClassVar[str | None] = None  # no real page verified it yet

    @classmethod
    def sniff(cls, response: Response) -> bool:
        if not isinstance(response, HtmlResponse) or not response.css(REPORT):
            return False
        return _REPORT_NUMBER.search(" ".join(response.css(".report-number ::text").getall())) is not None

    def parse(self, response: Response, **kwargs: Any) -> Iterator[ReviewItem | scrapy.Request]:
        if isinstance(response, HtmlResponse) and response.css(LISTING_LINKS) and not response.css(REPORT):
            return self._listing(response)
        return self._parse_page(response)

    def _listing(self, response: HtmlResponse) -> Iterator[scrapy.Request]:
        """A search listing: every report page on it (known ones too: a business's rebuttal comes later, and an
        unchanged page costs a 304), then the next listing unless all of this one's reports are known."""
        from spiders.blocked import detect_block

        vendor = detect_block(response.status, response.headers, response.body)
        if vendor:
            self.crawler.stats.set_value("repwatch/blocked", vendor)
            self.record_evidence(response)
            return
        self.stat("pages")
        page = response.meta.get("page", 1)
        numbers = []
        for href in response.css(LISTING_LINKS).getall():
            url = response.urljoin(href.strip())
            match = _REPORT_NUMBER_IN_URL.search(url.split("?", 1)[0])
            numbers.append(match.group(1) if match else None)
            yield response.follow(url, callback=self.parse, errback=self.fetch_failed, meta=self.page_meta(page))
        if numbers and all(number in self.known_ids for number in numbers):
            self.stat("stopped_at_known")
            return
        next_href = response.css("ul.pagination li.next a::attr(href), a[rel=next]::attr(href)").get()
        if next_href and page >= self.max_pages:
            self.stat("page_cap_reached")
        elif next_href:
            yield response.follow(next_href, callback=self.parse, errback=self.fetch_failed,
                                  meta=self.page_meta(page + 1))

    def parse_reviews(self, response: Response) -> Iterator[ReviewItem]:
        if isinstance(response, HtmlResponse):
            yield from self.read_each(response.css(REPORT)[:1], lambda report: self._report(response, report))

    def _report(self, response: HtmlResponse, report: Selector) -> ReviewItem | None:
        match = _REPORT_NUMBER_IN_URL.search(response.url.split("?", 1)[0].split("#", 1)[0]) or _REPORT_NUMBER.search(
            " ".join(report.css(".report-number ::text").getall()) or " ".join(report.css("::text").getall())[:5000])
        if not match:
            self.problem("ripoff_report/missing_id")
            return None
        body = report.css("#report-body, .report-body, [itemprop=reviewBody], [itemprop=articleBody]").get()
        if not body:
            self.problem("ripoff_report/missing_text")
        return ReviewItem(
            external_id=match.group(1),
            url=response.url.split("#", 1)[0],
            body=html_to_text(body or ""),
            title=clean_line(" ".join(report.css("h1 ::text").getall())),
            author=self._labelled(report, ".author", "author"),
            published_at=self._date(self._labelled(report, ".submitted, .posted", "submitted")),
            language="en",
            reply=self._business_rebuttal(response),
            snippet_hash=snippet_hash(report.get()),
        )

    def _labelled(self, report: Selector, css: str, label: str) -> str | None:
        """The text after "Author:" / "Submitted:": in its own element, else in any short element with that label."""
        for node in report.css(css) or report.xpath(
                f".//*[not(*)][starts-with(translate(normalize-space(.), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',"
                f" 'abcdefghijklmnopqrstuvwxyz'), '{label}:')]"):
            text = clean_line(" ".join(node.css("::text").getall()))
            if text:
                return clean_line(_LABEL.sub("", text))
        return None

    def _business_rebuttal(self, response: HtmlResponse) -> Reply | None:
        """The earliest rebuttal written by the business itself."""
        for rebuttal in response.css(".rebuttal"):
            role = " ".join(rebuttal.css(".rebuttal-role ::text, .rebuttal-header ::text").getall()).lower()
            if not any(business in role for business in _BUSINESS_ROLES):
                continue
            body = html_to_text(rebuttal.css(".rebuttal-body").get() or "")
            if body:
                when = clean_line(" ".join(rebuttal.css(".rebuttal-date ::text").getall()))
                return Reply(body, self._date(when) if when else None)
        return None

    def _date(self, text: str | None) -> datetime | None:
        parsed = parse_datetime(_WEEKDAY.sub("", text)) if text else None
        if parsed is None:
            self.problem("ripoff_report/bad_date")
        return parsed
